"""Compaction over a lake's history: does a run cost what its new data costs?

Two measurements, both against the emulator (``fmcg local``'s moto server on 127.0.0.1):

Both find new raw objects as the scheduled job does (``--discovery queue``, the default):
from the raw bucket's S3 event notifications, which the emulator delivers to the stack's
``RawEventsQueue`` (:mod:`pipeline.compaction.discovery`); ``--discovery listing`` measures
the listing of the open window instead (the sweep, and the job before the queue).

1. **After history** (the year-of-operation issue's acceptance): a lake that has compacted
   ``--history-objects`` small raw objects spread over 60 arrival days gets 20 new
   objects; the run that compacts them is timed in a fresh process (imports excluded) and
   compared with the same 20 objects compacted into a new lake, in the same run, rounds
   alternating which side goes first, both through the same code. Goal: ratio <= 1.3. The
   manifest's size is shown for both.
2. **Thirty days of hourly runs** at a fixed rate (``--objects-per-hour`` raw objects of
   ``--events-per-object`` events, 5 % of them late by up to three days, 1 % repeated by
   a retried batch; time compressed: the raw keys and events carry the simulated hour):
   per run, wall time, S3 and SQS requests by kind, bytes read and written, and the
   manifest's size; then the least-squares slope of each over the run number, and the
   state at day 1 and day 30. A slope near zero is the point: the fixed cost does not grow
   with the lake.

Usage: .venv/bin/python benchmarks/compaction_history.py [--days 30] [--quick] [--json P]
       [--discovery queue|listing]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from _common import Figure, add_arguments, measure_in_process, write_json

if TYPE_CHECKING:
    from collections.abc import Callable

START = datetime(2026, 1, 5, tzinfo=UTC)
SHARDS = ("shardId-000000000000", "shardId-000000000001")


def _body(rng: random.Random, hour: datetime, n: int, prefix: str, late: float) -> bytes:
    lines = []
    for i in range(n):
        when = hour + timedelta(seconds=rng.randint(0, 3599))
        if rng.random() < late:
            when -= timedelta(days=rng.randint(1, 3))
        kind = rng.choices(["sale", "return", "stock_count"], [90, 3, 7])[0]
        event = {
            "event_id": f"{prefix}-{i:05d}",
            "event_type": kind,
            "sku_id": f"SKU-{rng.randint(1, 200):04d}",
            "location_id": f"STORE-{rng.randint(1, 20):03d}",
            "quantity": 0 if kind == "stock_count" else rng.randint(1, 6),
            "event_time": when.isoformat(),
            "unit_price": round(rng.uniform(0.5, 20), 2),
        }
        if kind == "stock_count":
            event["stock_on_hand"] = rng.randint(0, 200)
        lines.append(json.dumps(event))
    if lines and rng.random() < 0.01:
        lines.append(lines[0])  # a retried batch repeats an event
    return ("\n".join(lines) + "\n").encode()


def _put_hour(
    s3: Any,
    raw: str,
    hour: datetime,
    *,
    objects: int,
    events: int,
    seed: int,
    tag: str = "",
    late: float = 0.05,
) -> None:
    rng = random.Random(seed)
    for n in range(objects):
        shard = SHARDS[n % len(SHARDS)]
        seq = int(hour.timestamp()) * 100 + n
        key = f"sales/{hour:%Y/%m/%d}/{shard}-{seq:020d}{tag}-{seq:020d}.json"
        body = _body(rng, hour, events, f"{hour:%Y%m%d%H}{tag}-{n}", late)
        s3.put_object(Bucket=raw, Key=key, Body=body)


class RequestCounter:
    """S3 and SQS requests by operation (SQS ones prefixed ``sqs:``) and S3 bytes each way,
    from botocore's event hooks."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.bytes_read = 0
        self.bytes_written = 0
        self._lock = threading.Lock()

    def attach(self, session: Any) -> None:
        events = session._session  # boto3's botocore session: hooks apply to every client
        events.register("before-send.s3", self._sent)
        events.register("before-send.sqs", self._sent_sqs)
        events.register("after-call.s3.GetObject", self._read)

    def _sent_sqs(self, request: Any, **_: Any) -> None:
        operation = request.context.get("operation_name") or request.method
        with self._lock:
            self.requests[f"sqs:{operation}"] += 1

    def _sent(self, request: Any, **_: Any) -> None:
        operation = request.context.get("operation_name") or request.method
        body = request.body
        size = len(body) if isinstance(body, bytes | bytearray) else 0
        if not size:
            size = int(request.headers.get("Content-Length", 0) or 0)
        with self._lock:
            self.requests[operation] += 1
            if request.method in ("PUT", "POST"):
                self.bytes_written += size

    def _read(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.bytes_read += int(parsed.get("ContentLength", 0))


def _manifest_bytes(s3: Any, curated: str) -> int:
    from pipeline.compaction.state import MANIFEST_KEY

    try:
        return int(s3.head_object(Bucket=curated, Key=MANIFEST_KEY)["ContentLength"])
    except Exception:  # noqa: BLE001 - no manifest yet
        return 0


def _measure(raw: str, curated: str, database: str, queue: str) -> None:
    """Child process: one compaction run, timed without imports; its report as JSON."""
    import boto3
    import pandas  # noqa: F401
    import pyarrow.acero  # noqa: F401

    from pipeline.compaction import run_compaction

    session = boto3.session.Session()
    session.client("s3").list_buckets()
    sqs = session.client("sqs")  # as the Glue script builds it, before the run
    start = time.perf_counter()
    report = run_compaction(raw_bucket=raw, curated_bucket=curated, database=database,
                            session=session, raw_queue_url=queue or None,
                            sqs_client=sqs)  # fmt: skip
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, **report.as_dict()}))


def _queue(stack: Any, discovery: str) -> str:
    """The stack's raw events queue, or ``""`` when measuring the listing."""
    return str(stack.ref("RawEventsQueue")) if discovery == "queue" else ""


def _timed_run(
    raw: str, curated: str, database: str, queue: str, env: dict[str, str]
) -> dict[str, Any]:
    args = [raw, curated, database, queue]
    result: dict[str, Any] = measure_in_process(__file__, args, env, "run")
    return result


def after_history(
    url: str, env: dict[str, str], history: int, rounds: int, discovery: str
) -> dict[str, Any]:
    """Measurement 1: 20 new objects after ``history`` objects over 60 days, vs a new lake."""
    from pipeline.compaction import run_compaction
    from pipeline.local.stack import LocalStack

    old = LocalStack.create(url, stack_name="hist-old")
    s3 = old.session().client("s3")
    raw, curated, database = old.ref("RawBucket"), old.ref("CuratedBucket"), old.ref("LakeDatabase")
    queue = _queue(old, discovery)
    per_hour = max(1, -(-history // (60 * 24)))  # at least ``history`` objects
    started = time.perf_counter()

    def put(hour: int) -> None:
        _put_hour(s3, raw, START + timedelta(hours=hour), objects=per_hour, events=3, seed=hour)

    # Several writers, as the stream's shards are: the emulator serves one request at a
    # time, but the writers' own overhead overlaps.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(60 * 24)))

    def compact_history() -> int:
        return run_compaction(
            raw_bucket=raw,
            curated_bucket=curated,
            database=database,
            session=old.session(),
            raw_queue_url=queue or None,
        ).raw_objects

    while compact_history():
        pass
    print(
        f"history: {per_hour * 60 * 24:,} raw objects over 60 days written and compacted in"
        f" {time.perf_counter() - started:.0f} s; manifest {_manifest_bytes(s3, curated):,} bytes",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {"history": [], "new": []}
    for r in range(rounds):
        # Each round's objects arrive on a day of their own, with events of that day only,
        # so both sides write the same new partitions: what differs is finding the objects,
        # the manifest, and the stock carried in. (Rewriting a day that already holds rows
        # is the curated-table format's cost, measured by benchmarks/compaction.py.)
        at = START + timedelta(days=60 + r, hours=12)
        fresh = LocalStack.create(url, stack_name=f"hist-new-{r}")
        fresh_s3 = fresh.session().client("s3")
        new = {"objects": 20, "events": 3, "seed": 10_000 + r, "tag": "n", "late": 0.0}
        _put_hour(s3, raw, at, **new)  # type: ignore[arg-type]
        _put_hour(fresh_s3, fresh.ref("RawBucket"), at, **new)  # type: ignore[arg-type]
        sides = {
            "history": (raw, curated, database, queue),
            "new": (
                fresh.ref("RawBucket"),
                fresh.ref("CuratedBucket"),
                fresh.ref("LakeDatabase"),
                _queue(fresh, discovery),
            ),
        }
        for side in ("history", "new")[:: 1 if r % 2 == 0 else -1]:
            result = _timed_run(*sides[side], env)
            result["manifest_bytes"] = _manifest_bytes(s3 if side == "history" else fresh_s3,
                                                       sides[side][1])  # fmt: skip
            runs[side].append(result)
    return {
        "history_objects": per_hour * 60 * 24,
        "runs": runs,
        "median_s": {s: statistics.median(r["elapsed"] for r in v) for s, v in runs.items()},
    }


def _slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` over their index (per run)."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(values)
    var = sum((x - mean_x) ** 2 for x in range(n))
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / var if var else 0.0


def hourly(  # noqa: PLR0917 - a measurement's parameters, all required
    url: str,
    days: int,
    objects: int,
    events: int,
    discovery: str,
    on_day: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Measurement 2: ``days`` x 24 hourly runs; per-run figures and their slopes
    (``on_day`` gets the summary so far after each simulated day)."""
    import boto3

    from pipeline.compaction import run_compaction
    from pipeline.local.stack import LocalStack

    stack = LocalStack.create(url, stack_name="hourly")
    raw, curated, database = (
        stack.ref("RawBucket"),
        stack.ref("CuratedBucket"),
        stack.ref("LakeDatabase"),
    )
    s3 = stack.session().client("s3")
    queue = _queue(stack, discovery)
    per_run: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for hour in range(days * 24):
        when = START + timedelta(hours=hour)
        _put_hour(s3, raw, when, objects=objects, events=events, seed=hour)
        session = boto3.session.Session()
        counter = RequestCounter()
        counter.attach(session)
        start = time.perf_counter()
        report = run_compaction(
            raw_bucket=raw,
            curated_bucket=curated,
            database=database,
            session=session,
            now=when + timedelta(minutes=59),
            raw_queue_url=queue or None,
        )
        per_run.append(
            {  # type: ignore[arg-type]
                "run": hour,
                "wall_s": time.perf_counter() - start,
                "requests": dict(counter.requests),
                "requests_total": sum(counter.requests.values()),
                "bytes_read": counter.bytes_read,
                "bytes_written": counter.bytes_written,
                "manifest_bytes": _manifest_bytes(s3, curated),
                "manifest_entries": report.manifest_entries,
                "raw_keys_listed": report.raw_keys_listed,
                "raw_objects": report.raw_objects,
                "queue_messages": report.queue_messages,
            }
        )
        if hour % 24 == 23:
            day = per_run[-24:]
            wall = statistics.median(r["wall_s"] for r in day)
            print(
                f"day {hour // 24 + 1:>2}: median run {wall:.2f} s,"
                f" {statistics.median(r['requests_total'] for r in day):.0f} requests,"
                f" manifest {day[-1]['manifest_bytes']:,} B"
                f" ({day[-1]['manifest_entries']} entries)",
                flush=True,
            )
            summary = _summary(per_run, discovery)
            on_day(summary)
    return summary


def _summary(per_run: list[dict[str, Any]], discovery: str) -> dict[str, Any]:
    """Slopes and means of the whole days in ``per_run``."""
    keys = ("wall_s", "requests_total", "bytes_read", "bytes_written", "manifest_bytes")
    # Listing: the first eight days fill the open window; the slope that matters is once it
    # is full. The queue has no window: every day after the first counts.
    # Within a day each run rewrites the day's growing partition (a sawtooth that resets at
    # midnight), so the slope is taken over each day's median run, per day.
    warm = 8 if discovery == "listing" else 1
    steady = per_run[24 * warm :] or per_run
    daily = [steady[i : i + 24] for i in range(0, len(steady), 24)]
    return {
        "per_run": per_run,
        "days": len(per_run) // 24,
        "steady_from_day": warm + 1 if len(per_run) > 24 * warm else 1,
        "slope_per_day": {
            k: _slope([statistics.median(r[k] for r in day) for day in daily]) for k in keys
        },
        "slope_per_run": {k: _slope([r[k] for r in steady]) for k in keys},
        "mean": {k: statistics.fmean(r[k] for r in steady) for k in keys},
        "manifest_bytes_day1": per_run[23]["manifest_bytes"],
        "manifest_bytes_last_day": per_run[-1]["manifest_bytes"],
    }


def _report(
    args: argparse.Namespace, history: dict[str, Any] | None, runs: dict[str, Any] | None
) -> None:
    """Print the figures measured so far and write them to ``--json``."""
    figures = []
    if history is not None:
        median = history["median_s"]
        ratio = median["history"] / median["new"]
        print(
            f"20 new objects after {history['history_objects']:,} over 60 days:"
            f" {median['history']:.2f} s, on a new lake {median['new']:.2f} s, ratio {ratio:.2f}"
        )
        figures.append(
            Figure(
                "run of 20 new objects after 60 days of history, vs a new lake",
                median["history"],
                "s",
                baseline=median["new"],
                goal="<= 1.3",
            )
        )
        for side in ("history", "new"):
            figures.append(
                Figure(
                    f"manifest after the run ({side})",
                    statistics.median(r["manifest_bytes"] for r in history["runs"][side]),
                    "B",
                )
            )
    if runs:
        slope, mean, days = runs["slope_per_day"], runs["mean"], runs["days"]
        steady_days = max(1, days - runs["steady_from_day"] + 1)
        print(
            f"{days} days of hourly runs, slope per day of the daily median run from day"
            f" {runs['steady_from_day']}: wall {slope['wall_s'] * 1000:+.2f} ms"
            f" (mean {mean['wall_s']:.2f} s),"
            f" requests {slope['requests_total']:+.4f} (mean {mean['requests_total']:.0f}),"
            f" bytes read {slope['bytes_read']:+.0f} B, written {slope['bytes_written']:+.0f} B,"
            f" manifest {slope['manifest_bytes']:+.1f} B;"
            f" manifest day 1 {runs['manifest_bytes_day1']:,} B,"
            f" day {days} {runs['manifest_bytes_last_day']:,} B",
            flush=True,
        )
        figures += [
            Figure(
                "daily median run: change over the steady days, as a fraction of the mean run",
                slope["wall_s"] * steady_days / mean["wall_s"],
                "",
                note="slope per day x steady days / mean run time",
            ),
            Figure(
                "S3 and SQS requests per run: change over the steady days",
                slope["requests_total"] * steady_days,
                "requests",
            ),
            Figure("manifest on day 1", runs["manifest_bytes_day1"], "B"),
            Figure(f"manifest on day {days}", runs["manifest_bytes_last_day"], "B"),
        ]
    details: dict[str, Any] = {"discovery": args.discovery, "days_requested": args.days}
    if history is not None:
        details["history"] = history
    if runs:
        details["hourly"] = {k: v for k, v in runs.items() if k != "per_run"}
        details["per_run"] = runs["per_run"]
    write_json(args.json, "compaction_history", figures, quick=args.quick, details=details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30, help="simulated days of hourly runs")
    parser.add_argument("--objects-per-hour", type=int, default=8)
    parser.add_argument("--events-per-object", type=int, default=50)
    parser.add_argument("--history-objects", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--discovery",
        choices=("queue", "listing"),
        default="queue",
        help="find new raw objects from the event queue (the scheduled job) or by listing",
    )
    parser.add_argument(
        "--only",
        choices=("history", "hourly"),
        help="one measurement only (each writes its figures; the hourly one after every day)",
    )
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.measure:
        _measure(*args.measure)
        return
    if args.quick:
        args.days, args.history_objects, args.rounds = 10, 5_000, 2

    from pipeline.local.emulator import local_environment, start_server, stop_server

    pid, url = start_server()
    env = {**os.environ, **local_environment(url)}
    os.environ.update(local_environment(url))
    history: dict[str, Any] | None = None
    try:
        if args.only != "hourly":
            history = after_history(url, env, args.history_objects, args.rounds, args.discovery)
            _report(args, history, None)
        if args.only != "history":
            hourly(
                url,
                args.days,
                args.objects_per_hour,
                args.events_per_object,
                args.discovery,
                on_day=lambda so_far: _report(args, history, so_far),
            )
    finally:
        stop_server(pid)


if __name__ == "__main__":
    main()
