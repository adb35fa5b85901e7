"""The Glue wheelhouse: wheels named by digest, pinned into the template, published once."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.packaging import wheelhouse
from pipeline.packaging.glue_artifacts import GlueArtifacts, publish_glue_artifacts
from pipeline.packaging.wheelhouse import LockedWheel, pin_template

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

DIGEST = "ab" * 32


def test_given_a_wheelhouse_url_then_the_wheel_names_its_pin_and_key() -> None:
    url = f"s3://bucket/glue/wheelhouse/{DIGEST}/pydantic_core-2.46.5-cp311-cp311-any.whl"

    wheel = LockedWheel.from_module(url)

    assert wheel is not None
    assert (wheel.requirement, wheel.sha256) == ("pydantic-core==2.46.5", DIGEST)
    assert f"s3://bucket/{wheel.key}" == url
    assert LockedWheel.from_module("pydantic-core==2.46.5") is None
    assert LockedWheel.from_module(f"s3://bucket/glue/wheels/{DIGEST}/x-1-py3-none-any.whl") is None


def test_given_a_module_written_as_a_pin_when_the_template_is_pinned_then_it_names_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Job:\n"
        "    Type: AWS::Glue::Job\n"
        "    Properties:\n"
        "      DefaultArguments:\n"
        '        "--additional-python-modules": !Join\n'
        '          - ","\n'
        '          - - !Sub "s3://${ArtifactsBucket}/glue/wheels/${PipelineWheelSha256}/a.whl"\n'
        '            - "mdurl==0.1.2"\n'
    )
    wheel = LockedWheel("mdurl-0.1.2-py3-none-any.whl", DIGEST)
    asked: list[list[str]] = []

    def lock_wheels(requirements: Any, lock: Path) -> dict[str, LockedWheel]:
        asked.append(list(requirements))
        return {"mdurl==0.1.2": wheel}

    monkeypatch.setattr(wheelhouse, "lock_wheels", lock_wheels)

    assert pin_template(template, tmp_path / "lock.txt") == 1
    assert asked == [["mdurl==0.1.2"]]
    assert f'            - !Sub "s3://${{ArtifactsBucket}}/{wheel.key}"\n' in template.read_text()


class FakeS3:
    """The S3 calls publishing makes, in memory; ``If-None-Match`` as S3 answers it."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[dict[str, Any]] = []

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.puts.append({k: v for k, v in kwargs.items() if k != "Body"})
        if kwargs.get("IfNoneMatch") == "*" and kwargs["Key"] in self.objects:
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
        self.objects[kwargs["Key"]] = kwargs["Body"].read()
        return {}

    def upload_file(self, filename: str, bucket: str, key: str) -> None:
        with open(filename, "rb") as handle:  # noqa: PTH123 - boto3's signature takes a str
            self.objects[key] = handle.read()


def _artifacts(root: Path) -> GlueArtifacts:
    script = root / "job.py"
    script.parent.mkdir(parents=True)
    script.write_text("print('job')\n")
    files = {}
    for prefix, name, body in (
        ("wheels", "fmcg-0.1-py3-none-any.whl", b"project"),
        ("wheelhouse", "mdurl-0.1.2-py3-none-any.whl", b"third party"),
    ):
        path = root / prefix / hashlib.sha256(body).hexdigest() / name
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
        files[prefix] = path
    return GlueArtifacts(root, (script,), files["wheels"], (files["wheelhouse"],))


def test_given_artifacts_when_published_twice_then_each_wheel_key_is_written_once(
    tmp_path: Path,
) -> None:
    artifacts = _artifacts(tmp_path / "glue")
    s3 = FakeS3()

    first = publish_glue_artifacts(artifacts, s3, "artifacts")
    second = publish_glue_artifacts(artifacts, s3, "artifacts")

    wheel_key = artifacts.key(artifacts.wheel)
    assert (
        wheel_key
        == f"glue/wheels/{hashlib.sha256(b'project').hexdigest()}/fmcg-0.1-py3-none-any.whl"
    )
    assert sorted(first) == sorted(
        ["glue/job.py", wheel_key, artifacts.key(artifacts.wheelhouse[0])]
    )
    assert second == ["glue/job.py"]
    assert [p["IfNoneMatch"] for p in s3.puts] == ["*", "*"]
    digest = hashlib.sha256(b"third party").digest()
    assert s3.puts[1]["ChecksumSHA256"] == base64.b64encode(digest).decode()
    assert artifacts.parameters() == {"PipelineWheelSha256": hashlib.sha256(b"project").hexdigest()}
