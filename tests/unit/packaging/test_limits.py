"""Lambda's size limits: the exact refusals."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pipeline.packaging import ArtifactTooLarge, LambdaLimits
from pipeline.packaging.limits import MB, check_unzipped, check_zipped, tree_size, zip_tree


def test_given_code_and_layer_over_250_mb_when_checked_then_refused_with_each_part() -> None:
    with pytest.raises(ArtifactTooLarge) as raised:
        check_unzipped("IngestStreamFunction", 1 * MB, {"layer": 250 * MB}, LambdaLimits())

    assert str(raised.value) == (
        "IngestStreamFunction is 251.0 MB unzipped (code 1.0 MB, layer 250.0 MB), over "
        "Lambda's limit of 250 MB for a function and its layers"
    )


def test_given_exactly_the_limit_when_checked_then_accepted() -> None:
    check_unzipped("F", 0, {"layer": 250 * MB}, LambdaLimits())
    check_zipped(Path("layer.zip"), 50 * MB, LambdaLimits())


def test_given_a_zip_over_50_mb_when_checked_then_refused() -> None:
    with pytest.raises(ArtifactTooLarge) as raised:
        check_zipped(Path("/b/layer.zip"), 50 * MB + 1, LambdaLimits())

    assert str(raised.value) == (
        "layer.zip is 50.0 MB zipped, over Lambda's limit of 50 MB for a directly uploaded .zip"
    )


def test_given_a_tree_when_zipped_twice_then_the_same_bytes_and_every_file(tmp_path: Path) -> None:
    (tmp_path / "src/python/pkg").mkdir(parents=True)
    (tmp_path / "src/python/pkg/a.py").write_text("x = 1\n" * 100)
    (tmp_path / "src/python/b.txt").write_text("b")

    first = zip_tree(tmp_path / "src", tmp_path / "one.zip")
    zip_tree(tmp_path / "src", tmp_path / "two.zip")

    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    assert first == (tmp_path / "one.zip").stat().st_size
    names = zipfile.ZipFile(tmp_path / "one.zip").namelist()
    assert names == ["python/b.txt", "python/pkg/a.py"]
    assert tree_size(tmp_path / "src") == 601
