"""Lambda's size limits, checked on the built artifacts before anything is deployed.

The quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): a
function's code and all its layers together at most 250 MB unzipped (Lambda's error names
262,144,000 bytes), and a .zip uploaded directly at most 50 MB. ``sam deploy`` uploads
through S3, but a direct ``update-function-code --zip-file`` must stay possible.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pipeline.packaging.exceptions import ArtifactTooLarge

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

MB: Final = 1024 * 1024
#: Zip entries get this timestamp, so the same tree always zips to the same bytes.
_EPOCH: Final = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaLimits:
    unzipped_bytes: int = 250 * MB
    zipped_bytes: int = 50 * MB


def tree_size(root: Path) -> int:
    """Bytes of every file under ``root`` (what Lambda counts once the zip is extracted)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def tree_files(root: Path) -> list[Path]:
    """Every file under ``root``, relative to it, sorted."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def zip_tree(root: Path, archive: Path) -> int:
    """Zip ``root``'s contents (paths relative to it) into ``archive``; its size in bytes."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for relative in tree_files(root):
            path = root / relative
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return archive.stat().st_size


def check_unzipped(
    function: str, code_bytes: int, layer_bytes: Mapping[str, int], limits: LambdaLimits
) -> None:
    """Refuse a function whose code and layers together are over the unzipped limit."""
    total = code_bytes + sum(layer_bytes.values())
    if total <= limits.unzipped_bytes:
        return
    sizes = {"code": code_bytes, **layer_bytes}
    parts = ", ".join(f"{name} {size / MB:.1f} MB" for name, size in sizes.items())
    raise ArtifactTooLarge(
        f"{function} is {total / MB:.1f} MB unzipped ({parts}), over Lambda's limit of "
        f"{limits.unzipped_bytes / MB:.0f} MB for a function and its layers"
    )


def check_zipped(archive: Path, size: int, limits: LambdaLimits) -> None:
    """Refuse a .zip over the direct-upload limit."""
    if size > limits.zipped_bytes:
        raise ArtifactTooLarge(
            f"{archive.name} is {size / MB:.1f} MB zipped, over Lambda's limit of "
            f"{limits.zipped_bytes / MB:.0f} MB for a directly uploaded .zip"
        )


__all__ = ["LambdaLimits", "check_unzipped", "check_zipped", "tree_files", "tree_size", "zip_tree"]
