"""The local runtime's state on disk: 0700 directory, 0600 files, no symlink followed, and a
state file checked before anyone acts on it."""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.private_files import open_private_log, private_dir, read_private
from pipeline.local.stack import STATE_DIR_VARIABLE, LocalStack, state_dir

if TYPE_CHECKING:
    from pathlib import Path

ENDPOINT = "http://127.0.0.1:4566"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _stack(**overrides: Any) -> LocalStack:
    fields: dict[str, Any] = {
        "endpoint_url": ENDPOINT,
        "stack_name": "t",
        "template_path": "infra/template.yaml",
        "parameters": {},
        "resources": {},
        "pid": None,
    }
    fields.update(overrides)
    return LocalStack(**fields)


@pytest.fixture(autouse=True)
def _open_umask() -> Any:
    # The usual umask would hide a mode the code forgot to set; 0 shows it.
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_given_no_state_dir_when_saving_then_the_dir_is_0700_and_the_file_0600(
    tmp_path: Path,
) -> None:
    path = tmp_path / "home" / ".fmcg" / "local.json"

    _stack().save(path)

    assert _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["local.json"]  # no temporary left
    assert LocalStack.load(path) == _stack()


def test_given_an_open_existing_state_dir_then_it_is_closed_to_others(tmp_path: Path) -> None:
    directory = tmp_path / ".fmcg"
    directory.mkdir(mode=0o777)

    private_dir(directory)

    assert _mode(directory) == 0o700


def test_given_a_symlink_as_state_dir_then_it_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".fmcg").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(ConfigurationError) as info:
        _stack().save(tmp_path / ".fmcg" / "local.json")

    assert str(info.value) == (
        f"{tmp_path / '.fmcg'} is not a directory (a symlink or a file): "
        "refusing to use it for local state"
    )
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_given_a_symlink_named_fmcg_then_state_dir_does_not_resolve_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".fmcg").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STATE_DIR_VARIABLE, raising=False)

    assert state_dir() == tmp_path / ".fmcg"


def test_given_a_symlink_at_the_state_file_when_saving_then_its_target_is_untouched(
    tmp_path: Path,
) -> None:
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / ".fmcg").mkdir()
    (tmp_path / ".fmcg" / "local.json").symlink_to(target)

    _stack().save(tmp_path / ".fmcg" / "local.json")

    assert target.read_text() == "keep"
    assert not (tmp_path / ".fmcg" / "local.json").is_symlink()
    assert _mode(tmp_path / ".fmcg" / "local.json") == 0o600


def test_given_a_symlink_at_the_state_file_when_loading_then_it_is_refused(
    tmp_path: Path,
) -> None:
    planted = tmp_path / "planted.json"
    _stack().save(planted)
    (tmp_path / "local.json").symlink_to(planted)

    with pytest.raises(ConfigurationError) as info:
        read_private(tmp_path / "local.json")

    assert str(info.value) == (
        f"cannot read {tmp_path / 'local.json'} (Too many levels of symbolic links): "
        "refusing to use it for local state"
    )


def test_given_a_log_file_then_it_is_created_0600_and_an_existing_one_is_closed(
    tmp_path: Path,
) -> None:
    fresh, existing = tmp_path / "logs" / "new.log", tmp_path / "old.log"
    existing.write_text("before\n")
    existing.chmod(0o666)

    for path in (fresh, existing):
        with open_private_log(path) as log:
            log.write(b"line\n")

    assert (_mode(fresh), _mode(existing)) == (0o600, 0o600)
    assert existing.read_text() == "before\nline\n"


def test_given_a_symlink_at_the_log_file_then_it_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "emulator.log").symlink_to(target)

    with pytest.raises(ConfigurationError) as info:
        open_private_log(tmp_path / "emulator.log")

    assert str(info.value) == (
        f"cannot open {tmp_path / 'emulator.log'} (Too many levels of symbolic links): "
        "refusing to use it for local state"
    )
    assert target.read_text() == "keep"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://example.com:4566",
        "http://localhost:4566",
        "http://10.0.0.7:4566",
        "https://127.0.0.1:4566",
        "http://127.0.0.1",
        "http://user@127.0.0.1:4566",
        "http://127.0.0.1:4566/path",
        7,
    ],
)
def test_given_a_state_file_whose_endpoint_is_not_loopback_then_load_refuses_it(
    tmp_path: Path, endpoint: object
) -> None:
    path = tmp_path / "local.json"
    _stack().save(path)
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "endpoint_url": endpoint}))

    with pytest.raises(ConfigurationError) as info:
        LocalStack.load(path)

    assert str(info.value) == (
        f"{path}: endpoint {endpoint!r} is not a loopback URL (http://127.0.0.1:<port>)"
    )


@pytest.mark.parametrize("pid", [0, -1, 1, True, "123", 1.5])
def test_given_a_state_file_whose_pid_is_not_a_process_id_then_load_refuses_it(
    tmp_path: Path, pid: object
) -> None:
    path = tmp_path / "local.json"
    _stack().save(path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "pid": pid}))

    with pytest.raises(ConfigurationError) as info:
        LocalStack.load(path)

    assert str(info.value) == f"{path}: pid {pid!r} is not the id of an emulator process"


def test_given_a_state_file_that_is_not_json_then_load_says_so(tmp_path: Path) -> None:
    path = tmp_path / "local.json"
    path.write_text("{not json")

    with pytest.raises(ConfigurationError) as info:
        LocalStack.load(path)

    assert str(info.value) == (
        f"{path} is not a local stack state file (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)); `fmcg local up` writes one"
    )
