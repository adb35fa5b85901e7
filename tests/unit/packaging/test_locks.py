"""Every environment installs from a lock that still satisfies its sources (``make lock``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from pipeline.kcl import jars
from pipeline.packaging.locks import (
    LOCKS_DIR,
    ROOT,
    all_locks,
    glue_declared_modules,
    lock_named,
    read_pins,
    stale,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("lock", all_locks(), ids=lambda lock: lock.name)
def test_given_the_committed_locks_then_none_is_stale(lock) -> None:
    assert stale(lock) == []


@pytest.mark.parametrize("lock", all_locks(), ids=lambda lock: lock.name)
def test_given_the_committed_locks_then_every_pin_carries_its_hashes(lock) -> None:
    pins = read_pins(lock.path)

    assert pins
    assert [p.name for p in pins if not p.hashes] == []


def _without(lock_path: Path, name: str, into: Path) -> Path:
    # Drop one entry (its pin line and the hash lines that continue it).
    text = re.sub(rf"(?m)^{name}==[^\n]*\n(?:\s+--hash[^\n]*\n)*", "", lock_path.read_text())
    into.write_text(text)
    return into


def test_given_a_lock_missing_a_declared_dependency_then_it_is_stale(tmp_path) -> None:
    dev = lock_named("dev")
    broken = replace(dev, path=_without(dev.path, "duckdb", tmp_path / "dev.txt"))

    assert stale(broken) == ["duckdb>=1.1,<3: not in dev.txt"]


def test_given_a_pin_outside_its_range_then_the_lock_is_stale(tmp_path) -> None:
    tools = lock_named("tools")
    text = re.sub(r"(?m)^checkov==\S+", "checkov==2.5.0", tools.path.read_text())
    (tmp_path / "tools.txt").write_text(text)

    assert stale(replace(tools, path=tmp_path / "tools.txt")) == [
        "checkov>=3.2,<4: tools.txt pins 2.5.0"
    ]


def test_given_a_pin_without_hashes_then_the_lock_is_stale(tmp_path) -> None:
    build = lock_named("build")
    text = re.sub(
        r"(?m)^(wheel==\S+) \\\n(\s+--hash=\S+ \\\n)*\s+--hash=\S+\n",
        r"\1\n",
        build.path.read_text(),
    )
    (tmp_path / "build.txt").write_text(text)

    problems = stale(replace(build, path=tmp_path / "build.txt"))

    assert len(problems) == 1
    assert re.fullmatch(r"wheel==\S+ has no hash", problems[0])


def test_given_the_template_then_the_glue_lock_holds_each_declared_module_exactly() -> None:
    pins = {(p.name, p.version) for p in read_pins(lock_named("glue-5.1").path)}
    declared = glue_declared_modules("5.1")

    assert "lightgbm" in {m.split("==")[0] for m in declared}
    missing = [m for m in declared if (m.split("==")[0].lower(), m.split("==")[1]) not in pins]
    assert missing == []


def test_given_the_makefile_then_every_pip_install_but_the_latest_check_is_hash_checked() -> None:
    makefile = (ROOT / "Makefile").read_text()
    # The one unlocked install is `make test-latest`'s, by design; the project itself is
    # installed editable with --no-deps on top of its lock.
    installs = [
        line
        for line in makefile.splitlines()
        if "pip install" in line
        and not line.startswith("LOCKED_INSTALL :=")
        and "$(LATEST)" not in line
        and "-e ." not in line
    ]

    assert installs == []
    assert makefile.count("$(LOCKED_INSTALL)") >= 3
    assert "--require-hashes" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile


def test_given_the_dev_lock_then_the_build_lock_takes_its_versions() -> None:
    dev = {p.name: p.version for p in read_pins(LOCKS_DIR / "dev.txt")}
    build = {p.name: p.version for p in read_pins(LOCKS_DIR / "build.txt")}

    assert {n: dev.get(n) for n in build} == build


def _jar_lock(tmp_path: Path, **contents: bytes) -> tuple[Path, Path]:
    directory = tmp_path / "jars"
    directory.mkdir()
    lines = []
    for artifact, content in contents.items():
        (directory / f"{artifact}-1.0.jar").write_bytes(content)
        sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        lines.append(f"{sha1}  org.example:{artifact}:1.0\n")
    lock = tmp_path / "kcl-jars.txt"
    lock.write_text("# test\n" + "".join(lines))
    return directory, lock


def test_given_the_published_jars_then_verify_finds_nothing(tmp_path) -> None:
    directory, lock = _jar_lock(tmp_path, a=b"A", b=b"B")

    assert jars.verify(directory, lock) == []


def test_given_a_changed_jar_then_verify_names_it_with_both_digests(tmp_path) -> None:
    directory, lock = _jar_lock(tmp_path, a=b"A", b=b"B")
    (directory / "b-1.0.jar").write_bytes(b"tampered")
    changed = hashlib.sha1(b"tampered", usedforsecurity=False).hexdigest()
    published = hashlib.sha1(b"B", usedforsecurity=False).hexdigest()

    assert jars.verify(directory, lock) == [
        f"b-1.0.jar: SHA-1 {changed}, Maven Central published {published}"
    ]


def test_given_a_missing_and_an_extra_jar_then_verify_names_both(tmp_path) -> None:
    directory, lock = _jar_lock(tmp_path, a=b"A", b=b"B")
    (directory / "a-1.0.jar").unlink()
    (directory / "c-2.0.jar").write_bytes(b"C")

    assert jars.verify(directory, lock) == [
        f"a-1.0.jar: missing from {directory}",
        "c-2.0.jar: not in kcl-jars.txt",
    ]


def test_given_the_installed_kclpy_then_its_jars_are_the_locked_ones() -> None:
    assert jars.verify() == []
    assert len(jars.locked_jars()) > 50


def test_given_a_pom_with_property_versions_then_dependencies_resolve_them(tmp_path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><properties>'
        "<kcl.version>3.1.3</kcl.version></properties><dependencies><dependency>"
        "<groupId>software.amazon.kinesis</groupId><artifactId>amazon-kinesis-client</artifactId>"
        "<version>${kcl.version}</version></dependency></dependencies></project>"
    )

    assert jars.pom_dependencies(pom) == [
        ("software.amazon.kinesis", "amazon-kinesis-client", "3.1.3")
    ]
