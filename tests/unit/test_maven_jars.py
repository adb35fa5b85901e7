"""Jars installed from a lock: downloaded only when missing or changed, checked before use."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from pipeline import maven_jars
from pipeline.errors import ConfigurationError
from pipeline.spark import jars as spark_jars

if TYPE_CHECKING:
    from pathlib import Path


def _repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **contents: bytes) -> Path:
    """A Maven-layout repository of ``contents`` (artifact -> bytes) served from files, and
    a lock pinning each artifact's SHA-1."""
    repository = tmp_path / "maven"
    lines = []
    for artifact, content in contents.items():
        folder = repository / "org" / "example" / artifact / "1.0"
        folder.mkdir(parents=True)
        (folder / f"{artifact}-1.0.jar").write_bytes(content)
        sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        lines.append(f"{sha1}  org.example:{artifact}:1.0\n")
    monkeypatch.setattr(maven_jars, "MAVEN_CENTRAL", repository.as_uri())
    lock = tmp_path / "test-jars.txt"
    lock.write_text("# test\n" + "".join(lines))
    return lock


def test_given_an_empty_directory_when_installed_then_every_jar_is_there_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _repository(tmp_path, monkeypatch, a=b"A", b=b"B")
    target = tmp_path / "jars"

    assert maven_jars.install(target, lock) == ["a-1.0.jar", "b-1.0.jar"]
    assert maven_jars.verify(target, lock) == []
    assert maven_jars.install(target, lock) == []  # nothing downloaded twice


def test_given_a_changed_and_an_extra_jar_when_installed_then_only_the_locked_ones_remain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _repository(tmp_path, monkeypatch, a=b"A", b=b"B")
    target = tmp_path / "jars"
    maven_jars.install(target, lock)
    (target / "a-1.0.jar").write_bytes(b"tampered")
    (target / "c-2.0.jar").write_bytes(b"C")

    assert maven_jars.install(target, lock) == ["a-1.0.jar"]
    assert sorted(p.name for p in target.iterdir()) == ["a-1.0.jar", "b-1.0.jar"]


def test_given_a_download_that_differs_from_the_lock_then_install_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _repository(tmp_path, monkeypatch, a=b"A")
    published = tmp_path / "maven" / "org" / "example" / "a" / "1.0" / "a-1.0.jar"
    published.write_bytes(b"not what was locked")
    changed = hashlib.sha1(b"not what was locked", usedforsecurity=False).hexdigest()
    pinned = hashlib.sha1(b"A", usedforsecurity=False).hexdigest()
    target = tmp_path / "jars"

    with pytest.raises(ConfigurationError) as error:
        maven_jars.install(target, lock)

    assert str(error.value) == f"a-1.0.jar: downloaded SHA-1 {changed}, test-jars.txt pins {pinned}"
    assert list(target.iterdir()) == []


def test_given_no_installed_jars_then_a_session_is_told_to_run_make_install(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationError) as error:
        spark_jars.iceberg_jars(tmp_path)

    assert str(error.value) == (
        f"Iceberg jars missing from {tmp_path}: iceberg-spark-runtime-3.5_2.12-1.10.0.jar, "
        "iceberg-aws-bundle-1.10.0.jar; run `make install` "
        "(or `python -m pipeline.spark.jars --install`)"
    )


def test_given_make_install_then_the_iceberg_jars_are_the_locked_ones() -> None:
    assert maven_jars.verify(spark_jars.jar_directory(), spark_jars.ICEBERG_LOCK) == []
    assert [p.name for p in spark_jars.iceberg_jars()] == [
        "iceberg-spark-runtime-3.5_2.12-1.10.0.jar",
        "iceberg-aws-bundle-1.10.0.jar",
    ]


def test_given_datalake_formats_iceberg_then_a_local_glue_run_gets_the_locked_jars() -> None:
    from pipeline.local.glue_runtime import datalake_jars

    assert datalake_jars({"--datalake-formats": "hudi, iceberg"}) == {
        spark_jars.JARS_VARIABLE: str(spark_jars.jar_directory())
    }
    assert datalake_jars({"--datalake-formats": "delta"}) == {}
    assert datalake_jars({}) == {}


def test_given_the_jars_variable_then_the_session_takes_the_jars_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(spark_jars.JARS_VARIABLE, str(tmp_path))

    assert spark_jars.jar_directory() == tmp_path


def test_given_a_run_from_artifacts_without_the_lock_then_the_given_directorys_jars_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Glue job run from its wheel has no locks/: the local runtime names the checked jars.
    (tmp_path / "b.jar").write_bytes(b"b")
    (tmp_path / "a.jar").write_bytes(b"a")
    monkeypatch.setenv(spark_jars.JARS_VARIABLE, str(tmp_path))

    found = spark_jars.iceberg_jars(lock=tmp_path / "no-such-lock.txt")

    assert [p.name for p in found] == ["a.jar", "b.jar"]


def test_given_no_lock_and_an_empty_directory_then_the_error_says_make_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(spark_jars.JARS_VARIABLE, str(tmp_path))

    with pytest.raises(ConfigurationError, match=r"^no Iceberg jars in .*; run `make install`$"):
        spark_jars.iceberg_jars(lock=tmp_path / "no-such-lock.txt")
