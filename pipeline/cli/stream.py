"""``fmcg produce`` and ``fmcg consume``: the sales stream from the command line.

``fmcg produce --from FILE|-`` puts a retailer's own NDJSON events (see
:mod:`pipeline.produce.ndjson`). Its exit status tells a script what happened: 0 every line
accepted and put, 3 some lines refused (each reported with its number and reason, and
written to ``--rejects FILE``) and every accepted one put, 1 an error (the input cannot be
read, the stream failed: the message says from which line to send again), 2 a command
line that does not parse.
"""

from __future__ import annotations

import base64
import contextlib
import json
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, TextIO

import typer
from rich.text import Text

from pipeline.cli.console import console, err_console, printable, progress
from pipeline.cli.local import current_stack
from pipeline.errors import InvalidInputError
from pipeline.local.event_source import LocalPoller, PollStats
from pipeline.local.stack import LocalStack, state_dir
from pipeline.produce import Producer, ProduceReport
from pipeline.produce.ndjson import LinesReport, Refused, send_lines
from pipeline.synth import SynthConfig, live_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

INGEST_FUNCTION = "IngestStreamFunction"
#: How often ``produce`` puts what the target rate has accumulated.
TICK_S = 0.1
DEFAULT_RATE = 500.0
DEFAULT_DURATION = 10.0
DEFAULT_SEED = 7
#: ``produce --from`` prints this many refused lines by default (``--rejects`` keeps all).
SHOW_REFUSED = 20
#: The exit status of ``produce --from`` when some lines were refused and the rest sent.
EXIT_REFUSED = 3


def produce(  # noqa: PLR0913 - the synthetic source's options and --from's
    *,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE|-",
            help="Put the NDJSON sales events of FILE (- for standard input) instead of "
            "synthetic ones; each line is validated against the contract first.",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Target events per second.", min=1, show_default=f"{DEFAULT_RATE:g}"),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds to produce for.", min=0.1, show_default=f"{DEFAULT_DURATION:g}"),
    ] = None,
    aggregate: Annotated[bool, typer.Option(help="Pack events into KPL aggregates.")] = False,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the synthetic world.", show_default=str(DEFAULT_SEED)),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="With --from: write every refused line to FILE as NDJSON "
            "(line, reason, detail, data).",
            dir_okay=False,
        ),
    ] = None,
    show_refused: Annotated[
        int,
        typer.Option(help="With --from: print at most this many refused lines.", min=0),
    ] = SHOW_REFUSED,
) -> None:
    """Put live events to the sales stream: synthetic at a target rate, or a file's.

    With --from, exits 0 when every line was accepted and put, 3 when some lines were
    refused (and every accepted one put), 1 on an error (the input cannot be read, the
    stream failed).
    """
    if source is None:
        if rejects is not None:
            raise typer.BadParameter("only with --from", param_hint="--rejects")
        _produce_synthetic(
            rate=DEFAULT_RATE if rate is None else rate,
            duration=DEFAULT_DURATION if duration is None else duration,
            aggregate=aggregate,
            seed=DEFAULT_SEED if seed is None else seed,
        )
        return
    given = [
        name
        for name, value in (("--rate", rate), ("--duration", duration), ("--seed", seed))
        if value is not None
    ]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} shape synthetic events; --from sends the events of its input",
            param_hint="--from",
        )
    refused = _produce_from(source, aggregate=aggregate, rejects=rejects, show=show_refused)
    if refused:
        raise typer.Exit(EXIT_REFUSED)


def _produce_synthetic(*, rate: float, duration: float, aggregate: bool, seed: int) -> None:
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


def _produce_from(source: str, *, aggregate: bool, rejects: Path | None, show: int) -> int:
    """Put the valid lines of ``source``; report the refused ones; return how many."""
    stack = current_stack()
    stream = stack.ref("SalesStream")
    producer = Producer(stack.session().client("kinesis"), stream, aggregate=aggregate)
    name = "standard input" if source == "-" else source
    shown = 0

    def on_refused(line: Refused) -> None:
        nonlocal shown
        if rejects_file is not None:
            rejects_file.write(reject_record(line))
        if shown < show:
            shown += 1
            # The detail quotes the line: printable, never markup.
            err_console.print(
                Text.assemble(("refused ", "yellow"), printable(str(line))),
                soft_wrap=True,
                highlight=False,
            )

    started = time.monotonic()
    with contextlib.ExitStack() as context:
        lines = context.enter_context(_open_source(source))
        rejects_file = context.enter_context(_open_rejects(rejects))
        on_batch: Callable[[LinesReport], object] = lambda _: None  # noqa: E731
        if err_console.is_terminal:  # a bar only for people: nothing extra in a log
            bar = context.enter_context(progress())
            task = bar.add_task("producing", total=None)
            on_batch = lambda r: bar.update(task, completed=r.produced.events)  # noqa: E731
        try:
            report = send_lines(lines, producer, on_refused=on_refused, on_batch=on_batch)
        except OSError as e:
            raise InvalidInputError(f"cannot read {name}: {e.strerror or e}") from e
    wall = time.monotonic() - started
    produced = report.produced
    summary = (
        f"produced {produced.events} events from {name} to {stream} in "
        f"{produced.kinesis_records} Kinesis records ({produced.calls} PutRecords calls, "
        f"{produced.retried_records} records retried) in {wall:.1f}s"
        f"{' (aggregated)' if aggregate else ''}; "
    )
    refused = report.refused_lines
    if refused:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(report.refused.items()))
        summary += f"{refused} lines refused: {reasons}"
    else:
        summary += "no line refused"
    console.print(printable(summary), soft_wrap=True, highlight=False, markup=False)
    if refused > shown:
        where = f"every one is in {rejects}" if rejects else "--rejects FILE keeps them all"
        err_console.print(
            printable(f"{refused - shown} more refused lines not shown ({where})"),
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    return refused


def reject_record(line: Refused) -> str:
    """One line of a ``--rejects`` file: the line's number, reason, detail and its text
    (``data``), or its bytes in base64 (``data_b64``) when they are not UTF-8; neither when
    the line was too long to keep."""
    record: dict[str, object] = {"line": line.line, "reason": line.reason, "detail": line.detail}
    if line.data is not None:
        try:
            record["data"] = line.data.decode("utf-8")
        except UnicodeDecodeError:
            record["data_b64"] = base64.b64encode(line.data).decode("ascii")
    return json.dumps(record, ensure_ascii=False) + "\n"


@contextlib.contextmanager
def _open_source(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield typer.get_binary_stream("stdin")
        return
    try:
        handle = Path(source).open("rb")
    except OSError as e:
        raise InvalidInputError(f"cannot read {source}: {e.strerror or e}") from e
    with handle:
        yield handle


@contextlib.contextmanager
def _open_rejects(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    try:
        handle = path.open("w", encoding="utf-8")
    except OSError as e:
        raise InvalidInputError(f"cannot write {path}: {e.strerror or e}") from e
    with handle:
        yield handle


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
