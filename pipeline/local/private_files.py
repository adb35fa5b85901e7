"""The local runtime's state on disk: only its owner can read it, and never through a symlink.

``.fmcg/`` holds the state file that every ``fmcg`` command trusts (the emulator's endpoint
and pid) and the emulator's log. Another user who could write there, or plant a symlink
where it or its files will be, could point the CLI at another endpoint, have ``fmcg local
down`` signal another process, or have a write land on a file of their choosing. So the
directory is 0700 and checked to be a real directory of this user's; files are 0600,
written to a fresh temporary file (``O_CREAT | O_EXCL``) renamed over the name (a rename
replaces a symlink, it never writes through one), and opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import ConfigurationError

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _check(path: Path, fd: int, *, directory: bool) -> None:
    """``fd`` (``path`` opened without following a symlink) is this user's file or directory."""
    info = os.fstat(fd)
    if directory != stat.S_ISDIR(info.st_mode) or not (directory or stat.S_ISREG(info.st_mode)):
        kind = "directory" if directory else "regular file"
        raise ConfigurationError(f"{path} is not a {kind}: refusing to use it for local state")
    if info.st_uid != os.geteuid():
        raise ConfigurationError(
            f"{path} belongs to uid {info.st_uid}, not to you: refusing to use it for local state"
        )


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter: created 0700, or an existing one
    checked (a real directory, not a symlink, owned by this user) and set to 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as e:  # ELOOP for a symlink, ENOTDIR for a file
        raise ConfigurationError(
            f"{path} is not a directory (a symlink or a file): refusing to use it for local state"
        ) from e
    try:
        _check(path, fd, directory=True)
        os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, body: bytes) -> None:
    """Replace ``path`` with ``body`` atomically, as a 0600 file in a private directory."""
    private_dir(path.parent)
    # mkstemp opens with O_CREAT | O_EXCL and mode 0600: a new file, never an existing one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_private(path: Path) -> bytes:
    """The bytes of this user's regular file ``path`` (never read through a symlink).

    Raises :class:`FileNotFoundError` when there is no such file, :class:`ConfigurationError`
    when it cannot be used (a symlink, a directory, someone else's).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as e:  # ELOOP for a symlink
        raise ConfigurationError(
            f"cannot read {path} ({e.strerror}): refusing to use it for local state"
        ) from e
    with os.fdopen(fd, "rb") as file:
        _check(path, fd, directory=False)
        return file.read()


def open_private_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, created 0600 (an existing one set to 0600)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW | _CLOEXEC, FILE_MODE)
    except OSError as e:
        raise ConfigurationError(
            f"cannot open {path} ({e.strerror}): refusing to use it for local state"
        ) from e
    try:
        _check(path, fd, directory=False)
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")
