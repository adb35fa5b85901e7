"""``fmcg local down`` signals only the emulator; ``fmcg local status`` quotes its exports."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from pipeline.cli import local
from pipeline.cli.main import app
from pipeline.local.emulator import SERVER_MODULE, is_emulator
from pipeline.local.stack import STATE_DIR_VARIABLE, LocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator

PORT = 45_731
ENDPOINT = f"http://127.0.0.1:{PORT}"


def _process(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the emulator."""
    process = _process()
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def lookalike() -> Iterator[subprocess.Popen[bytes]]:
    """A process with the emulator's command line (``python -m pipeline.local.server``)."""
    process = _process("-m", SERVER_MODULE, "--host", "127.0.0.1", "--port", str(PORT))
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def _state(home: Path, pid: int) -> None:
    LocalStack(ENDPOINT, "t", "infra/template.yaml", {}, {}, pid).save(home / "local.json")


def _wait_for_argv(process: subprocess.Popen[bytes]) -> None:
    # /proc/<pid>/cmdline is the parent's until the child has exec'd the interpreter.
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    deadline = time.monotonic() + 5
    while cmdline.exists() and b"time.sleep" not in cmdline.read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_given_processes_then_only_the_emulator_on_that_port_is_recognised(
    bystander: subprocess.Popen[bytes], lookalike: subprocess.Popen[bytes]
) -> None:
    _wait_for_argv(lookalike)
    assert is_emulator(lookalike.pid, ENDPOINT)
    assert not is_emulator(lookalike.pid, "http://127.0.0.1:45732")
    assert not is_emulator(bystander.pid, ENDPOINT)
    assert not is_emulator(os.getpid(), ENDPOINT)


def test_given_a_state_file_naming_another_process_when_down_then_it_is_not_signalled(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    _state(tmp_path, bystander.pid)

    result = CliRunner().invoke(
        app, ["local", "down"], env={STATE_DIR_VARIABLE: str(tmp_path), "COLUMNS": "200"}
    )

    assert result.exit_code == 0
    assert result.output == (
        f"process {bystander.pid} is not the emulator on {ENDPOINT}; not signalled\n"
        f"down {ENDPOINT}\n"
    )
    assert bystander.poll() is None
    assert not (tmp_path / "local.json").exists()


def test_given_the_emulator_when_down_then_it_is_stopped(
    tmp_path: Path, lookalike: subprocess.Popen[bytes]
) -> None:
    _wait_for_argv(lookalike)
    _state(tmp_path, lookalike.pid)

    result = CliRunner().invoke(app, ["local", "down"], env={STATE_DIR_VARIABLE: str(tmp_path)})

    assert result.exit_code == 0, result.output
    assert lookalike.wait(timeout=10) is not None


def test_given_a_state_file_naming_another_process_then_commands_say_no_emulator_runs(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    _state(tmp_path, bystander.pid)

    result = CliRunner().invoke(app, ["local", "status"], env={STATE_DIR_VARIABLE: str(tmp_path)})

    assert result.exit_code == 1
    assert result.output == "error: the local emulator is not running (run `fmcg local up`)\n"


class _Stack(LocalStack):
    def environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": ENDPOINT, "ODD": "a b; touch x", "QUOTE": "it's $(id) [/]"}


def test_given_values_with_shell_characters_when_status_then_exports_are_quoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        local, "current_stack", lambda: _Stack(ENDPOINT, "t", "infra/template.yaml", {}, {})
    )

    result = CliRunner().invoke(app, ["local", "status"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"export AWS_ENDPOINT_URL={ENDPOINT}",
        "export ODD='a b; touch x'",
        "export QUOTE='it'\"'\"'s $(id) [/]'",
    ]
    values = [shlex.split(line.removeprefix("export "))[0] for line in result.output.splitlines()]
    assert values[2] == "QUOTE=it's $(id) [/]"
