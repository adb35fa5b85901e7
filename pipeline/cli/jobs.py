"""``fmcg compact``, ``fmcg import`` and ``fmcg forecast`` share this: a template Glue job
run from its artifacts, one progress bar per step, and the ``--engine`` option."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.console import progress
from pipeline.job_protocol import ENGINES

if TYPE_CHECKING:
    from rich.progress import TaskID

#: ``--engine``: overrides the job's ``--engine`` argument (the template's JobEngine).
Engine = Annotated[
    str | None,
    typer.Option(
        help=f"Where the job does its work: {' or '.join(ENGINES)} "
        "(default: the template's JobEngine parameter).",
    ),
]


def run_job(job: str, arguments: dict[str, str | None]) -> dict[str, Any]:
    """Run ``job`` on the local stack with the given run arguments (``None``: not given)."""
    from pipeline.cli.local import current_stack
    from pipeline.local.glue_runtime import run_glue_job

    engine = arguments.get("--engine")
    if engine is not None and engine not in ENGINES:
        raise typer.BadParameter(
            f"one of {', '.join(ENGINES)}, not {engine!r}", param_hint="--engine"
        )
    stack = current_stack()
    with progress() as bar:
        tasks: dict[str, TaskID] = {}

        def on_progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=max(total, 1))
            bar.update(tasks[step], completed=done, total=max(total, 1))

        given = {name: value for name, value in arguments.items() if value is not None}
        return run_glue_job(stack, job, arguments=given, progress=on_progress)
