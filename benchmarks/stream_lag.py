"""Stream lag: from an event's arrival in Kinesis to its durable raw object, at a given rate.

Locally (default) it starts an emulator (moto server on 127.0.0.1), provisions the stack
with ``--shards`` shards, runs the local poller with the real IngestStreamFunction handler
(one thread per shard), and produces at ``--rate`` events/s for ``--duration`` s (KPL-aggregated,
paced by a token bucket in its own thread). The lag of every event is the handler's own
``StreamLagMilliseconds`` EMF value (arrival -> raw object written), timed by when its
batch finished. Against AWS (``--aws --stream S --raw-bucket B``) it produces the same way,
then reads the stream's arrival timestamps and the raw objects' ``LastModified``.

Prints p50 / p95 / p99 / max lag, the achieved events/s and the lag slope (linear
regression of lag over time, ms per minute: ~0 when the consumer keeps up), and writes a
JSON record and a PNG (lag over time and its histogram).

    .venv/bin/python benchmarks/stream_lag.py --rate 2000 --duration 60 --window 0
    .venv/bin/python benchmarks/stream_lag.py --sweep --rates 500,2000 --windows 0,1
    .venv/bin/python benchmarks/stream_lag.py --aws --stream fmcg-sales --raw-bucket fmcg-raw-...

Acceptance: 2 shards at 2,000 events/s for 60 s, p99 lag <= batching window + 500 ms.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _common import Figure, add_arguments, write_json

from pipeline.local.emulator import aws_session, start_server, stop_server
from pipeline.local.event_source import EventSourceMapping, Invocation, LocalPoller, PollObserver
from pipeline.local.invoke import load_handler
from pipeline.local.stack import LocalStack
from pipeline.produce import Producer
from pipeline.synth import SynthConfig, live_events

RESULTS = Path(__file__).resolve().parent / "results"
FUNCTION = "IngestStreamFunction"
#: The acceptance margin over the batching window for p99 lag.
P99_MARGIN_MS = 500.0
#: How often the pacing thread releases the tokens it has earned (one PutRecords round).
TICK_S = 0.05


# ---------------------------------------------------------------------- measuring
@dataclass
class LagRun:
    """The outcome of one run: every event's lag and when it was measured."""

    rate: float
    duration_s: float
    window_s: float
    shards: int
    produced: int = 0
    produce_elapsed_s: float = 0.0
    kinesis_records: int = 0
    #: (seconds since the run started, lag in ms), one per event, in completion order.
    samples: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        return self.produced / self.produce_elapsed_s if self.produce_elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        """Percentiles, slope and rates of this run (the JSON record's per-run part)."""
        lags = np.array([lag for _, lag in self.samples], dtype=float)
        times = np.array([t for t, _ in self.samples], dtype=float)
        out: dict[str, Any] = {
            "rate_target": self.rate,
            "duration_s": self.duration_s,
            "window_s": self.window_s,
            "shards": self.shards,
            "produced": self.produced,
            "measured": len(self.samples),
            "kinesis_records": self.kinesis_records,
            "achieved_events_per_s": round(self.achieved_rate, 1),
            "notes": self.notes,
        }
        if len(lags):
            p50, p95, p99 = np.percentile(lags, [50, 95, 99])
            out.update(
                p50_ms=round(float(p50), 1),
                p95_ms=round(float(p95), 1),
                p99_ms=round(float(p99), 1),
                max_ms=round(float(lags.max()), 1),
                mean_ms=round(float(lags.mean()), 1),
                slope_ms_per_min=round(slope_ms_per_minute(times, lags), 2),
                p99_goal_ms=self.window_s * 1000 + P99_MARGIN_MS,
                p99_passed=bool(p99 <= self.window_s * 1000 + P99_MARGIN_MS),
            )
        return out


def slope_ms_per_minute(times_s: np.ndarray, lags_ms: np.ndarray) -> float:
    """Least-squares slope of lag over time, in ms of lag per minute of run."""
    if len(times_s) < 2 or float(np.ptp(times_s)) == 0.0:
        return 0.0
    slope, _ = np.polyfit(times_s, lags_ms, 1)
    return float(slope) * 60.0


class LagTimer(PollObserver):
    """Notes when each batch's lag values came out, and how long the handler was busy."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.samples: list[tuple[float, float]] = []
        #: Seconds spent inside the handler, summed over the shards' concurrent invocations:
        #: near the run's length times the shards = the consumer saturated.
        self.busy_s = 0.0
        self._lock = threading.Lock()

    def on_invocation(self, invocation: Invocation) -> None:
        at = time.monotonic() - self.started
        with self._lock:
            self.busy_s += invocation.duration_s
            self.samples.extend((at, lag) for lag in invocation.lags_ms)

    def restart(self) -> None:
        """Forget the samples so far and time the next ones from now."""
        with self._lock:
            self.samples.clear()
            self.started = time.monotonic()


class Pacer(threading.Thread):
    """Produces ``rate`` events/s for ``duration_s`` s: a token bucket, one put per tick.

    Tokens accrue continuously; each tick takes the whole ones and puts that many fresh
    events (aggregated). A put slower than a tick just leaves more tokens for the next one,
    so the average rate holds as long as the producer can keep up at all.
    """

    def __init__(
        self, producer: Producer, rate: float, duration_s: float, config: SynthConfig
    ) -> None:
        super().__init__(name="stream-lag-pacer", daemon=True)
        self.producer, self.rate, self.duration_s = producer, rate, duration_s
        self.config = config
        self.produced = 0
        self.kinesis_records = 0
        self.elapsed_s = 0.0
        self.error: BaseException | None = None
        self.started_at: datetime | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def _run(self) -> None:
        self.started_at = datetime.now(UTC)
        start = time.monotonic()
        end = start + self.duration_s
        tokens, last = 0.0, start
        while True:
            now = time.monotonic()
            if now >= end:
                tokens += self.rate * (end - last)
            else:
                tokens += self.rate * (now - last)
            last = min(now, end)
            n = int(tokens)
            if n:
                tokens -= n
                events = live_events(self.config, datetime.now(UTC), n, first_index=self.produced)
                report = self.producer.put(events)
                self.produced += report.events
                self.kinesis_records += report.kinesis_records
            if now >= end:
                break
            pause = TICK_S - (time.monotonic() - now)
            if pause > 0:
                time.sleep(pause)
        self.elapsed_s = time.monotonic() - start


def produce(
    endpoint_url: str | None, stream: str, rate: float, duration_s: float, config: SynthConfig
) -> tuple[int, int, float]:
    """Produce at ``rate`` for ``duration_s``; return (events, Kinesis records, seconds)."""
    return produce_with(
        aws_session(endpoint_url).client("kinesis"), stream, rate, duration_s, config
    )


def produce_with(
    kinesis: Any, stream: str, rate: float, duration_s: float, config: SynthConfig
) -> tuple[int, int, float]:
    """:func:`produce` with a given Kinesis client."""
    pacer = Pacer(Producer(kinesis, stream, aggregate=True), rate, duration_s, config)
    pacer.start()
    pacer.join()
    if pacer.error is not None:
        raise pacer.error
    return pacer.produced, pacer.kinesis_records, pacer.elapsed_s


def run_local(
    url: str,
    *,
    rate: float,
    duration_s: float,
    window_s: float,
    shards: int,
    config: SynthConfig,
    drain_timeout_s: float = 60.0,
) -> LagRun:
    """One run on a fresh stack of the emulator at ``url``.

    A few events go through first, untimed: the handler's cold start (imports, clients)
    is a one-off that would otherwise dominate p99 of a short run.
    """
    stack = LocalStack.create(
        url, stack_name=f"lag{uuid.uuid4().hex[:6]}", parameters={"ShardCount": shards}
    )
    mapping = dataclasses.replace(
        EventSourceMapping.from_template(stack, FUNCTION), batching_window_s=window_s
    )
    handler = load_handler(stack, FUNCTION)
    session = stack.session()
    stream = stack.ref("SalesStream")
    timer = LagTimer(started=time.monotonic())
    poller = LocalPoller(
        stack,
        FUNCTION,
        handler,
        mapping=mapping,
        kinesis_client=session.client("kinesis"),
        observer=timer,
    )
    poller.start()
    warm = SynthConfig(seed=config.seed + 1, n_skus=config.n_skus, n_locations=config.n_locations)
    Producer(session.client("kinesis"), stream, aggregate=True).put(
        live_events(warm, datetime.now(UTC), 50)
    )
    poller.drain(timeout_s=30)
    timer.restart()
    stop = threading.Event()
    consumer = threading.Thread(target=poller.run, args=(stop,), name="poller", daemon=True)
    consumer.start()
    # The producer runs in its own process, as it would on its own machine: in this one it
    # would take the GIL from the handler and slow the very consumer being measured.
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            produced, records, elapsed = pool.submit(
                produce, url, stream, rate, duration_s, config
            ).result()
    except BaseException:
        stop.set()
        consumer.join()
        raise
    result = LagRun(rate, duration_s, window_s, shards)
    deadline = time.monotonic() + drain_timeout_s
    while len(timer.samples) < produced and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    consumer.join()
    result.produced, result.produce_elapsed_s, result.kinesis_records = produced, elapsed, records
    result.samples = list(timer.samples)
    if len(result.samples) < result.produced:
        result.notes.append(
            f"only {len(result.samples)} of {result.produced} events measured after a "
            f"{drain_timeout_s:.0f} s drain (invalid events or a consumer that fell behind)"
        )
    stats = poller.stats
    result.notes.append(
        f"{stats.invocations} invocations ({stats.records_invoked} Kinesis records), "
        f"{stats.function_errors} function errors; handler busy {timer.busy_s:.0f} s "
        f"(summed over {shards} shards) of a {time.monotonic() - timer.started:.0f} s run"
    )
    return result


# ---------------------------------------------------------------------- AWS
def run_aws(
    *,
    stream: str,
    raw_bucket: str,
    rate: float,
    duration_s: float,
    settle_s: float,
    region: str | None,
    config: SynthConfig,
    window_s: float = 1.0,
) -> LagRun:
    """Produce to a deployed stream; lag = raw object LastModified - record arrival.

    Every Kinesis record that arrived during the run is read back (shared throughput, from
    ``AT_TIMESTAMP``) for its arrival time and user-record count; every raw object written
    since is matched to its records by the shard and sequence range in its key. S3's
    ``LastModified`` has 1 s resolution, so lags are accurate to about a second.
    """
    import boto3

    session = boto3.session.Session(region_name=region) if region else aws_session(None)
    kinesis = session.client("kinesis")
    s3 = session.client("s3")
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    begun = datetime.now(UTC)
    produced, records, elapsed = produce_with(kinesis, stream, rate, duration_s, config)
    time.sleep(settle_s)  # Lambda's batching window and retries
    arrivals = _read_arrivals(kinesis, stream, [s["ShardId"] for s in shards], begun)
    # window_s: the deployed mapping's MaximumBatchingWindowInSeconds (the goal's base).
    result = LagRun(rate, duration_s, window_s, len(shards))
    result.produced, result.produce_elapsed_s, result.kinesis_records = produced, elapsed, records
    result.samples = match_lags(_raw_objects(s3, raw_bucket, begun), arrivals, begun)
    result.notes.append("AWS: lag from S3 LastModified (1 s resolution) - arrival")
    return result


def match_lags(
    objects: list[dict[str, Any]],
    arrivals: dict[str, list[tuple[int, datetime, int]]],
    begun: datetime,
) -> list[tuple[float, float]]:
    """(seconds since ``begun``, lag ms) per event: each object's records by sequence range."""
    samples: list[tuple[float, float]] = []
    for rows in arrivals.values():
        rows.sort()
    for obj in objects:
        shard_id, first, last = _parse_raw_key(obj["Key"])
        rows = arrivals.get(shard_id, [])
        written = obj["LastModified"]
        at = (written - begun).total_seconds()
        start = bisect.bisect_left(rows, (first,))
        for seq, arrival, count in rows[start:]:
            if seq > last:
                break
            lag_ms = max(0.0, (written - arrival).total_seconds() * 1000.0)
            samples.extend([(at, lag_ms)] * count)
    return sorted(samples)


def _read_arrivals(
    kinesis: Any, stream: str, shard_ids: list[str], since: datetime
) -> dict[str, list[tuple[int, datetime, int]]]:
    from pipeline.ingest.decode import deaggregate
    from pipeline.ingest.records import StreamRecord

    out: dict[str, list[tuple[int, datetime, int]]] = {}
    for shard_id in shard_ids:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=shard_id,
            ShardIteratorType="AT_TIMESTAMP",
            Timestamp=since,
        )["ShardIterator"]
        rows = out.setdefault(shard_id, [])
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for r in page["Records"]:
                record = StreamRecord(
                    shard_id,
                    r["SequenceNumber"],
                    r["ApproximateArrivalTimestamp"],
                    r["Data"],
                    r["PartitionKey"],
                )
                rows.append(
                    (
                        int(r["SequenceNumber"]),
                        r["ApproximateArrivalTimestamp"],
                        len(deaggregate(record)),
                    )
                )
            iterator = page.get("NextShardIterator")
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            time.sleep(0.2)  # 5 GetRecords/s per shard
    return out


def _raw_objects(s3: Any, bucket: str, since: datetime) -> list[dict[str, Any]]:
    from pipeline.lake.layout import RAW_SALES_PREFIX

    objects: list[dict[str, Any]] = []
    for day in {since.date(), datetime.now(UTC).date()}:
        prefix = f"{RAW_SALES_PREFIX}{day:%Y/%m/%d}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            # LastModified is truncated to the second.
            earliest = since - timedelta(seconds=1)
            objects.extend(o for o in page.get("Contents", []) if o["LastModified"] >= earliest)
    return objects


def _parse_raw_key(key: str) -> tuple[str, int, int]:
    """``sales/YYYY/MM/DD/<shardId>-<firstSeq>-<lastSeq>.json`` -> (shard, first, last)."""
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    shard_id, first, last = name.rsplit("-", 2)
    return shard_id, int(first), int(last)


# ---------------------------------------------------------------------- output
def plot(runs: list[LagRun], path: Path) -> None:
    """Lag over time (left) and its histogram (right), one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over_time, histogram) = plt.subplots(1, 2, figsize=(13, 4.5))
    for run in runs:
        if not run.samples:
            continue
        times = np.array([t for t, _ in run.samples])
        lags = np.array([lag for _, lag in run.samples])
        label = f"{run.rate:.0f}/s, window {run.window_s:g} s"
        step = max(1, len(times) // 20_000)  # keep the scatter light
        over_time.scatter(times[::step], lags[::step], s=2, alpha=0.4, label=label)
        histogram.hist(lags, bins=80, alpha=0.5, label=label)
    over_time.set(xlabel="time since start (s)", ylabel="lag (ms)", title="Stream lag over time")
    histogram.set(xlabel="lag (ms)", ylabel="events", title="Stream lag distribution")
    for axis in (over_time, histogram):
        axis.legend(fontsize=8, markerscale=4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(run: LagRun) -> None:
    s = run.summary()
    if "p99_ms" not in s:
        print(f"rate {run.rate:.0f}/s window {run.window_s:g} s: no lag measured; {s['notes']}")
        return
    verdict = "met" if s["p99_passed"] else "MISSED"
    print(
        f"rate {run.rate:>6.0f}/s  window {run.window_s:g} s  shards {run.shards}  "
        f"achieved {s['achieved_events_per_s']:>7.0f} events/s  "
        f"({s['measured']}/{s['produced']} measured)\n"
        f"  lag p50 {s['p50_ms']:.0f} ms  p95 {s['p95_ms']:.0f} ms  p99 {s['p99_ms']:.0f} ms  "
        f"max {s['max_ms']:.0f} ms  slope {s['slope_ms_per_min']:+.1f} ms/min  "
        f"(goal p99 <= {s['p99_goal_ms']:.0f} ms: {verdict})"
    )
    for note in s["notes"]:
        print(f"  note: {note}")


def figures(runs: list[LagRun]) -> list[Figure]:
    out = []
    for run in runs:
        s = run.summary()
        if "p99_ms" not in s:
            continue
        tag = f"{run.rate:.0f}/s w{run.window_s:g}s"
        goal = f"<= {s['p99_goal_ms']:g}"
        out += [
            Figure(
                f"stream lag p99 ({tag})",
                s["p99_ms"],
                "ms",
                goal=goal,
                note="goal: batching window + 500 ms",
            ),
            Figure(f"stream lag p50 ({tag})", s["p50_ms"], "ms"),
            Figure(f"stream lag max ({tag})", s["max_ms"], "ms"),
            Figure(
                f"stream lag slope ({tag}, {run.duration_s:g} s)",
                s["slope_ms_per_min"],
                "ms/min",
                note="~0 when the consumer keeps up",
            ),
            Figure(
                f"achieved rate ({tag})",
                s["achieved_events_per_s"],
                "events/s",
                baseline=run.rate,
                goal=">= 0.95",
                note="ratio to the target rate",
            ),
        ]
    return out


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of production")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument(
        "--window",
        type=_floats,
        default=None,
        help="batching window(s) in s, comma-separated (default: 0,1)",
    )
    parser.add_argument("--sweep", action="store_true", help="every --rates x --windows")
    parser.add_argument("--rates", type=_floats, default=[500.0, 1000.0, 2000.0, 4000.0])
    parser.add_argument("--windows", type=_floats, default=[0.0, 1.0])
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--skus", type=int, default=20, help="distinct SKUs in the events")
    parser.add_argument("--locations", type=int, default=5, help="distinct stores")
    parser.add_argument("--aws", action="store_true", help="the deployed stack (not local)")
    parser.add_argument("--stream", help="with --aws: the stream name")
    parser.add_argument("--raw-bucket", help="with --aws: the raw bucket")
    parser.add_argument("--region", default=None)
    parser.add_argument("--settle", type=float, default=30.0, help="with --aws: wait after")
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration = min(args.duration, 20.0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = args.json or RESULTS / f"stream_lag-{stamp}.json"
    png_path = args.png or json_path.with_suffix(".png")

    config = SynthConfig(seed=11, n_skus=args.skus, n_locations=args.locations)
    runs: list[LagRun] = []
    if args.aws:
        if not args.stream or not args.raw_bucket:
            parser.error("--aws needs --stream and --raw-bucket")
        runs.append(
            run_aws(
                stream=args.stream,
                raw_bucket=args.raw_bucket,
                rate=args.rate,
                duration_s=args.duration,
                settle_s=args.settle,
                region=args.region,
                config=config,
                window_s=(args.window or [1.0])[0],
            )
        )
        report(runs[-1])
    else:
        if args.sweep:
            plan = [(r, w) for w in args.windows for r in args.rates]
        else:
            plan = [(args.rate, w) for w in (args.window or [0.0, 1.0])]
        pid, url = start_server()
        try:
            for rate, window in plan:
                runs.append(
                    run_local(
                        url,
                        rate=rate,
                        duration_s=args.duration,
                        window_s=window,
                        shards=args.shards,
                        config=config,
                    )
                )
                report(runs[-1])
        finally:
            stop_server(pid)
    plot(runs, png_path)
    write_json(
        json_path,
        "stream_lag",
        figures(runs),
        quick=args.quick,
        details={
            "runs": [r.summary() for r in runs],
            "png": str(png_path),
            "mode": "aws" if args.aws else "local",
            "pairs": args.skus * args.locations,
        },
    )
    print(f"wrote {json_path} and {png_path}")
    print(json.dumps({"p99_ms": [r.summary().get("p99_ms") for r in runs]}))


if __name__ == "__main__":
    main()
