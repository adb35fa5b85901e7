"""How a Glue job script talks to whoever runs it: arguments in, progress and report out.

One protocol for every job. Arguments arrive Glue-style (``--name value``; Glue adds its
own, which are ignored, as ``getResolvedOptions`` ignores them). The job writes one JSON
line per progress step and one for its final report on stdout (CloudWatch Logs on AWS,
``fmcg compact`` / ``fmcg forecast`` locally); any other line is ordinary log output. A
bad argument is exit status 2 with one line saying which; a failure of the job itself is
a traceback and status 1, which Glue records as a failed run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from pipeline.errors import ConfigurationError
from pipeline.glue_args import resolve_options

PROGRESS: Final = "FMCG-PROGRESS "
REPORT: Final = "FMCG-REPORT "
#: The exit status of a run whose arguments are wrong (as argparse and typer use).
USAGE_ERROR: Final = 2
#: ``--engine``: where a job does its work. ``single``: one process (on Glue, the driver);
#: ``spark``: spread over the Spark executors (pipeline/spark), the same cores either way.
ENGINES: Final = ("single", "spark")


class Progress(Protocol):
    """Told how far each step of a job is (``done`` of ``total``)."""

    def __call__(self, step: str, done: int, total: int, /) -> None: ...


def null_progress(step: str, done: int, total: int) -> None:
    """The progress of a caller that does not watch (the null object)."""


def engine(options: Mapping[str, str]) -> str:
    """The job's ``--engine`` (default ``single``); a :class:`ConfigurationError` otherwise."""
    value = options.get("engine", "single")
    if value not in ENGINES:
        raise ConfigurationError(f"--engine must be one of {', '.join(ENGINES)}, got {value!r}")
    return value


def progress_line(step: str, done: int, total: int) -> str:
    """One progress line."""
    return PROGRESS + json.dumps({"step": step, "done": done, "total": total})


def report_line(report: Mapping[str, Any]) -> str:
    """The final report line."""
    return REPORT + json.dumps(report, sort_keys=True)


def parse_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """``("progress", {...})``, ``("report", {...})`` or ``None`` for any other line."""
    for kind, prefix in (("progress", PROGRESS), ("report", REPORT)):
        if line.startswith(prefix):
            try:
                body = json.loads(line[len(prefix) :])
            except ValueError:
                return None
            return (kind, body) if isinstance(body, dict) else None
    return None


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def stdout_progress(step: str, done: int, total: int) -> None:
    """Progress as protocol lines on stdout."""
    _emit(progress_line(step, done, total))


Body = Callable[[dict[str, str], Progress], Mapping[str, Any]]


def run_job(
    argv: Sequence[str],
    body: Body,
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> int:
    """Run a job script's ``body`` with its resolved arguments; the process's exit status.

    ``body`` gets the required and the given optional arguments and the progress to report
    to, and returns the report. A :class:`ConfigurationError` from the arguments or from
    ``body``'s own checks of them is the one-line usage error.
    """
    try:
        options = resolve_options(argv, required, optional)
        report = body(options, stdout_progress)
    except ConfigurationError as e:
        sys.stderr.write(f"{e}\n")
        return USAGE_ERROR
    _emit(report_line(report))
    return 0
