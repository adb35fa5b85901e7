"""The Spark workers' daemon re-reads a zip archive's directory only when the archive changed."""

from __future__ import annotations

import zipfile
import zipimport
from typing import TYPE_CHECKING

from pipeline.spark import python_daemon

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _archive(path: Path, *modules: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in modules:
            archive.writestr(f"{name}.py", f"NAME = {name!r}\n")
    return path


def test_given_an_unchanged_archive_when_caches_are_invalidated_again_then_it_is_not_reread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    importer = zipimport.zipimporter(str(_archive(tmp_path / "lib.zip", "first")))
    reads: list[str] = []
    reread = python_daemon._reread

    def counted(importer: zipimport.zipimporter) -> None:
        reads.append(importer.archive)
        reread(importer)

    monkeypatch.setattr(python_daemon, "_reread", counted)

    for _ in range(3):
        python_daemon.invalidate_caches(importer)

    assert reads == [importer.archive]


def test_given_an_archive_that_changed_when_caches_are_invalidated_then_its_new_modules_import(
    tmp_path: Path,
) -> None:
    path = _archive(tmp_path / "lib.zip", "first")
    importer = zipimport.zipimporter(str(path))
    python_daemon.invalidate_caches(importer)
    assert importer.find_spec("second") is None

    _archive(path, "first", "second")
    python_daemon.invalidate_caches(importer)

    spec = importer.find_spec("second")
    assert spec is not None
    assert spec.origin == f"{path}/second.py"
