"""Issue 29, item 4, on infra/template.yaml: the Glue jobs install nothing from an index.

Each job's modules are S3 wheels at content-addressed keys (the digest in the key), the
third-party ones exactly the Glue lock's wheels for Glue's platform, installed with
``--no-deps --no-index``; only the deploy role may write the artifacts, and a wheel's key
is written once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from pipeline.packaging.glue_artifacts import wheel_name
from pipeline.packaging.locks import glue_lock
from pipeline.packaging.wheelhouse import LockedWheel, job_modules, unlocked

JOBS = ("CompactSalesJob", "ForecastDemandJob", "ImportHistoryJob")
BUCKET = "${ArtifactsBucket}"
WHEELHOUSE = re.compile(rf"s3://{re.escape(BUCKET)}/glue/wheelhouse/[0-9a-f]{{64}}/[^/]+\.whl")
#: Every manylinux tag a glibc 2.34 x86_64 system (Glue 5.1's Amazon Linux 2023) accepts.
GLUE_PLATFORMS = [
    *(f"manylinux_2_{minor}_x86_64" for minor in range(34, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
GLUE_TAGS = {
    *cpython_tags((3, 11), platforms=GLUE_PLATFORMS),
    *compatible_tags((3, 11), "cp311", GLUE_PLATFORMS),
}


def _arguments(template: dict[str, Any], job: str) -> dict[str, Any]:
    arguments: dict[str, Any] = template["Resources"][job]["Properties"]["DefaultArguments"]
    return arguments


@pytest.mark.parametrize("job", JOBS)
def test_given_a_glue_job_then_its_modules_are_s3_wheels_installed_without_an_index(
    sam_template: dict[str, Any], job: str
) -> None:
    modules = job_modules(sam_template)[job]
    arguments = _arguments(sam_template, job)

    assert arguments["--python-modules-installer-option"].split() == ["--no-deps", "--no-index"]
    assert modules[0] == f"s3://{BUCKET}/glue/wheels/${{PipelineWheelSha256}}/{wheel_name()}"
    assert [m for m in modules[1:] if not WHEELHOUSE.fullmatch(m)] == []
    assert len(set(modules)) == len(modules)


def test_given_the_wheelhouse_keys_then_each_digest_is_the_locks_hash_of_its_pin(
    sam_template: dict[str, Any],
) -> None:
    wheels = [
        wheel
        for modules in job_modules(sam_template).values()
        for wheel in map(LockedWheel.from_module, modules)
        if wheel is not None
    ]

    assert {w.name for w in wheels} >= {"pyiceberg", "awswrangler", "lightgbm", "pydantic-core"}
    assert unlocked(wheels, glue_lock("5.1")) == []


def test_given_the_wheelhouse_keys_then_each_wheel_installs_on_glue_5_1(
    sam_template: dict[str, Any],
) -> None:
    filenames = {
        wheel.filename
        for modules in job_modules(sam_template).values()
        for wheel in map(LockedWheel.from_module, modules)
        if wheel is not None
    }

    unfit = [f for f in sorted(filenames) if not set(parse_wheel_filename(f)[3]) & GLUE_TAGS]
    assert unfit == []
    assert Tag("cp311", "cp311", "manylinux_2_28_x86_64") in GLUE_TAGS


def test_given_a_wheelhouse_digest_not_in_the_lock_then_it_is_reported_by_name() -> None:
    forged = LockedWheel("pyiceberg-0.12.0-py3-none-any.whl", "0" * 64)

    assert unlocked([forged], glue_lock("5.1")) == [
        f"pyiceberg-0.12.0-py3-none-any.whl: sha256 {'0' * 64} is not a hash lock-5.1.txt "
        "holds for pyiceberg==0.12.0"
    ]


def test_given_the_wheel_digest_parameter_then_the_deploy_must_pass_a_sha256(
    sam_template: dict[str, Any],
) -> None:
    parameter = sam_template["Parameters"]["PipelineWheelSha256"]

    assert "Default" not in parameter
    assert parameter["AllowedPattern"] == "^[0-9a-f]{64}$"


def _artifacts_policy(cfn_template: dict[str, Any]) -> list[dict[str, Any]]:
    policy = cfn_template["Resources"]["ArtifactsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ArtifactsBucket"}
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def test_given_the_artifacts_bucket_then_only_the_deploy_role_writes_under_glue(
    cfn_template: dict[str, Any],
) -> None:
    (deny,) = [
        s
        for s in _artifacts_policy(cfn_template)
        if s["Sid"] == "OnlyTheDeployRoleWritesGlueArtifacts"
    ]

    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(deny["Action"])
    assert deny["Resource"] == {"Fn::Sub": "${ArtifactsBucket.Arn}/glue/*"}
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Ref": "ArtifactsDeployRoleArn"}}
    }
    parameter = cfn_template["Parameters"]["ArtifactsDeployRoleArn"]
    assert "Default" not in parameter
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws:iam::123456789012:role/deploy")


def test_given_the_artifacts_bucket_then_a_wheel_key_is_written_once(
    cfn_template: dict[str, Any],
) -> None:
    (deny,) = [s for s in _artifacts_policy(cfn_template) if s["Sid"] == "WheelsAreWrittenOnce"]

    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:PutObject")
    assert deny["Resource"] == [
        {"Fn::Sub": "${ArtifactsBucket.Arn}/glue/wheels/*"},
        {"Fn::Sub": "${ArtifactsBucket.Arn}/glue/wheelhouse/*"},
    ]
    assert deny["Condition"] == {"Null": {"s3:if-none-match": "true"}}


@pytest.mark.parametrize("role", ["CompactSalesJobRole", "ForecastDemandJobRole"])
def test_given_a_job_role_then_it_only_reads_the_artifacts(
    cfn_template: dict[str, Any], role: str
) -> None:
    statements = [
        s
        for policy in cfn_template["Resources"][role]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
        if "ArtifactsBucket" in str(s["Resource"])
    ]

    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("s3:GetObject", {"Fn::Sub": "${ArtifactsBucket.Arn}/glue/*"})
    ]
