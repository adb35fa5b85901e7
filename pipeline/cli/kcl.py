"""``fmcg kcl run | leases | properties``: the KCL consumer (the real MultiLangDaemon)."""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer

from pipeline.cli.console import console, err_console
from pipeline.cli.local import current_stack
from pipeline.kcl.properties import render
from pipeline.local.kcl import (
    LocalWorker,
    application_name,
    leases,
    require_h2c,
    require_jars,
    seed_leases,
    worker_config,
)
from pipeline.local.stack import state_dir

#: The daemon's (logback's) levels.
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF")

app = typer.Typer(
    help="The KCL consumer: the MultiLangDaemon (Java) over the shared ingest core.",
    no_args_is_help=True,
)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def run(
    workers: Annotated[int, typer.Option(min=1, help="Worker processes sharing the leases.")] = 1,
    log_level: Annotated[str, typer.Option(help="The daemon's log level.")] = "INFO",
    seed: Annotated[
        bool, typer.Option(help="Write the first leases up front (skips KCL's empty-table wait).")
    ] = True,
) -> None:
    """Start KCL workers on the local stack's stream until interrupted (Ctrl-C)."""
    if log_level.upper() not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    stack = current_stack()
    require_jars()
    require_h2c(stack.endpoint_url)
    # The workers run in process groups of their own: a TERM to this command must still
    # reach the ``finally`` below that stops them, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    directory = state_dir() / "kcl"
    if seed:
        seed_leases(stack.session(), stack.ref("SalesStream"), application_name(stack.stack_name))
    started = [
        LocalWorker(stack, directory, f"worker-{i + 1}", log_level=log_level).start()
        for i in range(workers)
    ]
    err_console.print(
        f"[green]running[/] {workers} KCL worker(s) of {application_name(stack.stack_name)} on "
        f"{stack.ref('SalesStream')}; logs in {directory} (Ctrl-C stops)"
    )
    try:
        while all(w.running() for w in started):
            time.sleep(1)
        err_console.print("[red]a worker exited[/]; see its log")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err_console.print("stopping (leases are handed off)")
    finally:
        for w in started:
            w.stop()


@app.command("leases")
def show_leases() -> None:
    """Print the lease table: shard, owner and checkpoint."""
    stack = current_stack()
    table = application_name(stack.stack_name)
    for lease in sorted(leases(stack.session(), table).values(), key=lambda x: x.shard_id):
        console.print(
            f"{lease.shard_id}\t{lease.owner or '-'}\t{lease.checkpoint}\t{lease.sub_sequence}",
            highlight=False,
        )


@app.command()
def properties() -> None:
    """Print the properties file ``fmcg kcl run`` gives the daemon."""
    console.print(render(worker_config(current_stack())), highlight=False, end="")
