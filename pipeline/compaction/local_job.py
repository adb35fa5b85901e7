"""Run the compaction job against a provisioned stack: as Glue would, or in-process.

:func:`run_job_process` starts the template's job script in a new Python process with the
template's ``DefaultArguments`` plus the arguments Glue itself adds, and the stack's
environment (the emulator endpoint, credentials, names), exactly as a Glue Python-shell
run; :func:`compact_stack` calls the core directly (the demo and tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from pipeline.compaction.job import CompactionReport, run_compaction
from pipeline.compaction.progress_lines import parse_line
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipeline.local.stack import LocalStack

JOB_ID: Final = "CompactSalesJob"
#: What Glue adds to every run of a job without bookmarks.
GLUE_RUN_ARGUMENTS: Final = ("--job-bookmark-option", "job-bookmark-disable")


class JobFailed(PipelineError):
    """The job process exited with an error; ``output`` holds its last lines."""

    def __init__(self, returncode: int, output: str) -> None:
        super().__init__(f"compaction job exited with status {returncode}:\n{output}")
        self.returncode = returncode
        self.output = output


def job_command(stack: LocalStack) -> list[str]:
    """The command line Glue would run: the script and its ``--name value`` arguments."""
    arguments = stack.job_arguments(JOB_ID)
    args = [item for name, value in arguments.items() for item in (name, value)]
    job_name = stack.ref(JOB_ID)
    return [
        sys.executable,
        str(stack.job_script(JOB_ID)),
        "--JOB_NAME",
        job_name,
        *GLUE_RUN_ARGUMENTS,
        *args,
    ]


def run_job_process(
    stack: LocalStack, *, on_progress: Callable[[str, int, int], None] | None = None
) -> dict[str, Any]:
    """Run the job script as a process; returns its report (raises :class:`JobFailed`)."""
    env = {**os.environ, **stack.environment()}
    tail: deque[str] = deque(maxlen=30)
    report: dict[str, Any] | None = None
    with subprocess.Popen(
        job_command(stack),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None  # noqa: S101 - PIPE was requested
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            parsed = parse_line(line)
            if parsed is None:
                tail.append(line)
            elif parsed[0] == "progress" and on_progress is not None:
                body = parsed[1]
                on_progress(str(body["step"]), int(body["done"]), int(body["total"]))
            elif parsed[0] == "report":
                report = parsed[1]
        returncode = proc.wait()
    if returncode != 0 or report is None:
        raise JobFailed(returncode, "\n".join(tail))
    return report


def compact_stack(
    stack: LocalStack, *, progress: Callable[[str, int, int], None] | None = None
) -> CompactionReport:
    """Run the compaction core in-process against the stack's buckets and database."""
    arguments = stack.job_arguments(JOB_ID)
    return run_compaction(
        raw_bucket=arguments["--raw_bucket"],
        curated_bucket=arguments["--curated_bucket"],
        database=arguments["--database"],
        session=stack.session(),
        progress=progress,
    )
