"""``fmcg produce`` and ``fmcg consume``: the sales stream from the command line."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.console import console, err_console, progress
from pipeline.cli.local import current_stack
from pipeline.local.event_source import LocalPoller, PollStats
from pipeline.local.stack import LocalStack, state_dir
from pipeline.produce import Producer, ProduceReport
from pipeline.synth import SynthConfig, live_events

INGEST_FUNCTION = "IngestStreamFunction"
#: How often ``produce`` puts what the target rate has accumulated.
TICK_S = 0.1


def produce(
    rate: Annotated[float, typer.Option(help="Target events per second.", min=1)] = 500.0,
    duration: Annotated[float, typer.Option(help="Seconds to produce for.", min=0.1)] = 10.0,
    aggregate: Annotated[bool, typer.Option(help="Pack events into KPL aggregates.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world.")] = 7,
) -> None:
    """Put synthetic live events to the sales stream at a target rate."""
    stack = current_stack()
    producer = Producer(
        stack.session().client("kinesis"), stack.ref("SalesStream"), aggregate=aggregate
    )
    config = SynthConfig(seed=seed)
    total = int(rate * duration)
    report = ProduceReport()
    started = time.monotonic()
    with progress() as bar:
        task = bar.add_task("producing", total=total)
        while report.events < total:
            due = min(total, int(rate * (time.monotonic() - started)) + 1)
            n = due - report.events
            if n > 0:
                batch = live_events(config, datetime.now(UTC), n, first_index=report.events)
                report = report.merge(producer.put(batch))
                bar.update(task, completed=report.events)
            time.sleep(max(0.0, TICK_S - (time.monotonic() - started) % TICK_S))
    wall = time.monotonic() - started
    console.print(
        f"produced {report.events} events in {report.kinesis_records} Kinesis records "
        f"({report.calls} PutRecords calls, {report.retried_records} records retried) in "
        f"{wall:.1f}s: {report.events / wall:.0f} events/s, "
        f"{report.kinesis_records / wall:.0f} Kinesis records/s"
        f"{' (aggregated)' if aggregate else ''}"
    )


def checkpoint_path(stack: LocalStack) -> Path:
    """Where ``consume`` keeps its shard checkpoints, so a second run resumes."""
    return state_dir() / "checkpoints" / f"{stack.stack_name}-{INGEST_FUNCTION}.json"


def consume(
    follow: Annotated[
        bool, typer.Option("--follow/--drain", help="Keep polling, or stop once caught up.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Give up draining after this many s.", min=0)
    ] = 300.0,
) -> None:
    """Run the local event source mapping with the real IngestStreamFunction handler."""
    from pipeline.local.invoke import load_handler

    stack = current_stack()
    poller = LocalPoller(
        stack,
        INGEST_FUNCTION,
        load_handler(stack, INGEST_FUNCTION),
        checkpoint_path=checkpoint_path(stack),
        log_path=state_dir() / "logs" / "ingest_stream.log",
    )
    if follow:
        stop = threading.Event()
        err_console.print("consuming; Ctrl-C to stop")
        try:
            poller.run(stop)
        except KeyboardInterrupt:
            stop.set()
        stats = poller.stats
    else:
        with err_console.status("draining the stream"):
            stats = poller.drain(timeout_s=timeout)
        if not stats.caught_up:
            err_console.print(f"[yellow]not caught up after {timeout:.0f}s[/]")
    _print_stats(stats, poller.log_path)


def _print_stats(stats: PollStats, log_path: Path | None) -> None:
    lags = sorted(stats.lags_ms)
    lag = "no lag samples"
    if lags:
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        lag = f"lag p50 {statistics.median(lags):.0f} ms, p99 {p99:.0f} ms"
    console.print(
        f"{stats.invocations} invocations, {stats.records_checkpointed} records checkpointed, "
        f"{stats.function_errors} function errors, {stats.partial_failures} partial failures, "
        f"{stats.records_expired + stats.records_retries_exhausted} records in "
        f"{stats.failed_batches_written} batches to the failed-batches bucket "
        f"(`fmcg replay-failed`); {lag}; handler log: {log_path}"
    )
