"""Soak: R events/s for N minutes with the local poller consuming concurrently (not in CI).

Starts an emulator, provisions a stack, and runs the local poller with the real
IngestStreamFunction handler (the template's event source mapping) in a thread of this
process, the *consumer*. The producer runs in its own spawned process (KPL-aggregated,
paced by :class:`stream_lag.Pacer`'s token bucket), as it would on its own machine: in this
one it would take the GIL from the handler and starve the consumer being measured.

Every ``--sample`` seconds it records, for that interval: the events produced, the stream
lag of the events the handler finished (p50 / p99 / max of ``StreamLagMilliseconds``,
arrival -> raw object written), the handler's busy fraction, and the RSS of the consumer
process and of the emulator process (``/proc/<pid>/status`` VmRSS), separately: moto keeps
every Kinesis record and S3 object in memory, so the emulator grows with the data by design
and must not be mistaken for a leak in the pipeline. After production it drains.

Flat = the least-squares slope over the production phase, excluding the first minute of
warm-up, within the goals below (consumer RSS in MB/min, lag p99 in ms/min).

Samples go to stderr and, line by line, to ``results/soak-<rate>eps-<minutes>min.samples.jsonl``
(never stdout, which is the handler's: while invocations run the poller swaps ``sys.stdout``
for a router that captures each invocation's thread). At the
end it writes ``results/soak-<rate>eps-<minutes>min.json`` and ``.png``.

    .venv/bin/python benchmarks/soak.py --minutes 30 --rate 1000
    .venv/bin/python benchmarks/soak.py --minutes 1 --rate 300    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _common import Figure, write_json
from stream_lag import FUNCTION, RESULTS, Pacer, slope_ms_per_minute

from pipeline.local.emulator import aws_session, start_server, stop_server
from pipeline.local.event_source import Invocation, LocalPoller, PollObserver
from pipeline.local.invoke import load_handler
from pipeline.local.stack import LocalStack
from pipeline.produce import Producer
from pipeline.synth import SynthConfig, live_events

#: Flat enough: 30 MB over a 30-minute run would be a leak worth chasing.
RSS_SLOPE_GOAL_MB_PER_MIN = 1.0
#: Flat enough: ~300 ms of drift over 30 minutes, under the p99 margin of stream_lag.
LAG_SLOPE_GOAL_MS_PER_MIN = 10.0
WARMUP_S = 60.0


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (VmRSS), NaN when it is gone (no psutil needed)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _say(text: str) -> None:
    # stderr: stdout is the handler's, swapped by the poller while invocations run.
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------- consumer
class IntervalSampler(PollObserver):
    """Hands each interval's lags and handler busy time to the sampler.

    It keeps only the current interval's values: over a long run, keeping every lag (as
    ``PollStats.lags_ms`` does, so the poller runs with ``keep_lags=False``) would itself
    make the consumer's memory grow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lags: list[float] = []
        self._busy_s = 0.0
        self.measured = 0

    def on_invocation(self, invocation: Invocation) -> None:
        lags = invocation.lags_ms
        with self._lock:
            self._busy_s += invocation.duration_s
            self._lags.extend(lags)
            self.measured += len(lags)

    def take(self) -> tuple[list[float], float]:
        """The lags and handler seconds since the last call."""
        with self._lock:
            lags, busy = self._lags, self._busy_s
            self._lags, self._busy_s = [], 0.0
        return lags, busy


# ---------------------------------------------------------------------- producer
def produce_process(
    *,
    url: str,
    stream: str,
    rate: float,
    duration_s: float,
    config: SynthConfig,
    counter: Any,
    outbox: Any,
    halt: Any,
) -> None:
    """The producer's process: pace ``rate`` events/s, publish the running count.

    ``halt`` (an Event) ends it early; a put in flight then may land uncounted (at most one
    tick's worth of events).
    """
    began = time.monotonic()
    pacer = Pacer(
        Producer(aws_session(url).client("kinesis"), stream, aggregate=True),
        rate,
        duration_s,
        config,
    )
    pacer.start()
    while pacer.is_alive() and not halt.is_set():
        counter.value = pacer.produced
        pacer.join(0.5)
    counter.value = pacer.produced
    outbox.put(
        {
            "produced": pacer.produced,
            "kinesis_records": pacer.kinesis_records,
            "elapsed_s": pacer.elapsed_s or time.monotonic() - began,
            "error": repr(pacer.error) if pacer.error else None,
            "halted": halt.is_set(),
        }
    )
    outbox.close()
    outbox.join_thread()
    # The pacer thread cannot be interrupted; a halted producer just leaves.
    os._exit(0)


# ---------------------------------------------------------------------- measuring
@dataclass
class Interval:
    """One sampling interval."""

    t_s: float
    phase: str  # "produce" while the producer runs, then "drain"
    produced: int
    rate_eps: float
    measured: int
    lag_n: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    handler_busy: float
    consumer_rss_mb: float
    emulator_rss_mb: float


@dataclass
class SoakRun:
    """A whole soak: its parameters, intervals and the producer's own account."""

    rate: float
    minutes: float
    sample_s: float
    shards: int
    warmup_s: float
    intervals: list[Interval] = field(default_factory=list)
    producer: dict[str, Any] = field(default_factory=dict)
    backlog_at_end: int = 0
    drain_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def steady(self) -> list[Interval]:
        """Production-phase intervals after the warm-up."""
        return [i for i in self.intervals if i.phase == "produce" and i.t_s > self.warmup_s]

    def slope(self, attr: str) -> float:
        """Slope of one interval series per minute over :meth:`steady` (NaN if too short)."""
        points = [(i.t_s, getattr(i, attr)) for i in self.steady()]
        points = [(t, v) for t, v in points if not math.isnan(v)]
        if len(points) < 3:
            return float("nan")
        return slope_ms_per_minute(
            np.array([t for t, _ in points]), np.array([v for _, v in points])
        )

    def summary(self) -> dict[str, Any]:
        """The figures of the run (the JSON record's ``details``, without the intervals)."""
        steady = self.steady()
        p99s = [i.lag_p99_ms for i in steady if not math.isnan(i.lag_p99_ms)]
        produced = self.producer.get("produced", 0)
        elapsed = self.producer.get("elapsed_s", 0.0)
        measured = self.intervals[-1].measured if self.intervals else 0
        return {
            "rate_target": self.rate,
            "minutes": self.minutes,
            "sample_s": self.sample_s,
            "shards": self.shards,
            "warmup_s": self.warmup_s,
            "steady_intervals": len(steady),
            "produced": produced,
            "kinesis_records": self.producer.get("kinesis_records", 0),
            "achieved_events_per_s": round(produced / elapsed, 1) if elapsed else 0.0,
            "measured": measured,
            "unmeasured_after_drain": produced - measured,
            "backlog_at_end_of_production": self.backlog_at_end,
            "drain_s": round(self.drain_s, 1),
            "consumer_rss_mb_first_last": _first_last(steady, "consumer_rss_mb"),
            "emulator_rss_mb_first_last": _first_last(steady, "emulator_rss_mb"),
            "consumer_rss_slope_mb_per_min": _round(self.slope("consumer_rss_mb"), 3),
            "emulator_rss_slope_mb_per_min": _round(self.slope("emulator_rss_mb"), 3),
            "lag_p99_slope_ms_per_min": _round(self.slope("lag_p99_ms"), 2),
            "lag_p50_slope_ms_per_min": _round(self.slope("lag_p50_ms"), 2),
            "lag_p99_median_of_intervals_ms": _round(float(np.median(p99s)) if p99s else math.nan),
            "lag_p99_worst_interval_ms": _round(max(p99s) if p99s else math.nan),
            "handler_busy_mean": _round(
                float(np.mean([i.handler_busy for i in steady])) if steady else math.nan, 3
            ),
            "notes": self.notes,
        }


def _round(value: float, digits: int = 1) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def _first_last(intervals: list[Interval], attr: str) -> list[float] | None:
    if not intervals:
        return None
    return [round(getattr(intervals[0], attr), 1), round(getattr(intervals[-1], attr), 1)]


_HEADER = (
    f"{'t_s':>6} {'phase':>7} {'produced':>10} {'eps':>6} {'measured':>10} "
    f"{'p50_ms':>7} {'p99_ms':>7} {'busy':>5} {'cons_mb':>8} {'emu_mb':>8}"
)


def _line(i: Interval) -> str:
    return (
        f"{i.t_s:6.0f} {i.phase:>7} {i.produced:10,} {i.rate_eps:6.0f} {i.measured:10,} "
        f"{i.lag_p50_ms:7.0f} {i.lag_p99_ms:7.0f} {i.handler_busy:5.2f} "
        f"{i.consumer_rss_mb:8.1f} {i.emulator_rss_mb:8.1f}"
    )


def run_soak(
    url: str,
    emulator_pid: int,
    *,
    rate: float,
    minutes: float,
    sample_s: float,
    shards: int,
    config: SynthConfig,
    samples_path: Path | None = None,
    drain_timeout_s: float = 120.0,
    max_emulator_mb: float = 8000.0,
) -> SoakRun:
    """Produce (another process) and consume (this one) for ``minutes``, sampling as it goes.

    The consumer and the producer are always stopped before this returns or raises.
    """
    duration_s = minutes * 60.0
    warmup_s = min(WARMUP_S, duration_s / 2)
    run = SoakRun(rate, minutes, sample_s, shards, warmup_s)
    if warmup_s < WARMUP_S:
        run.notes.append(f"run shorter than 2 min: warm-up cut to {warmup_s:g} s")
    stack = LocalStack.create(
        url, stack_name=f"soak{uuid.uuid4().hex[:6]}", parameters={"ShardCount": shards}
    )
    session = stack.session()
    stream = stack.ref("SalesStream")
    sampler = IntervalSampler()
    poller = LocalPoller(
        stack,
        FUNCTION,
        load_handler(stack, FUNCTION),
        kinesis_client=session.client("kinesis"),
        observer=sampler,
        keep_lags=False,
    )
    # The handler's cold start (imports, clients) is a one-off, not part of the soak.
    warm = SynthConfig(seed=config.seed + 1, n_skus=config.n_skus, n_locations=config.n_locations)
    poller.start()
    Producer(session.client("kinesis"), stream, aggregate=True).put(
        live_events(warm, datetime.now(UTC), 50)
    )
    poller.drain(timeout_s=30)
    sampler.take()
    sampler.measured = 0

    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    outbox = ctx.Queue()
    halt = ctx.Event()
    producer = ctx.Process(
        target=produce_process,
        kwargs={
            "url": url,
            "stream": stream,
            "rate": rate,
            "duration_s": duration_s,
            "config": config,
            "counter": counter,
            "outbox": outbox,
            "halt": halt,
        },
        name="soak-producer",
        daemon=True,
    )
    stop = threading.Event()
    consumer = threading.Thread(target=poller.run, args=(stop,), name="poller", daemon=True)
    if samples_path is not None:
        samples_path.parent.mkdir(parents=True, exist_ok=True)
        samples_path.write_text("")
    consumer.start()
    started = time.monotonic()
    producer.start()
    try:
        _say(f"soak: {rate:g} events/s for {minutes:g} min, {shards} shards; every {sample_s:g} s")
        _say(_HEADER)
        last_t, last_produced = 0.0, 0
        next_sample = started + sample_s
        drain_deadline: float | None = None
        drain_began = 0.0
        while True:
            now = time.monotonic()
            producing = drain_deadline is None
            if producing and not producer.is_alive():
                drain_began = now
                drain_deadline = now + drain_timeout_s
                run.producer = outbox.get(timeout=10)
                run.backlog_at_end = run.producer["produced"] - sampler.measured
                if run.producer["error"]:
                    raise RuntimeError(f"producer failed: {run.producer['error']}")
            done = drain_deadline is not None and (
                sampler.measured >= run.producer["produced"] or now >= drain_deadline
            )
            if now >= next_sample or done:
                produced = int(counter.value)
                t = now - started
                lags, busy = sampler.take()
                values = np.array(lags) if lags else None
                p50, p99, top = (
                    np.percentile(values, [50, 99, 100]) if values is not None else [math.nan] * 3
                )
                interval = Interval(
                    t_s=round(t, 2),
                    # An interval in which production ended counts as drain, not steady state.
                    phase="produce" if drain_deadline is None else "drain",
                    produced=produced,
                    rate_eps=(produced - last_produced) / (t - last_t) if t > last_t else 0.0,
                    measured=sampler.measured,
                    lag_n=len(lags),
                    lag_p50_ms=float(p50),
                    lag_p99_ms=float(p99),
                    lag_max_ms=float(top),
                    handler_busy=busy / (t - last_t) if t > last_t else 0.0,
                    consumer_rss_mb=rss_mb(os.getpid()),
                    emulator_rss_mb=rss_mb(emulator_pid),
                )
                run.intervals.append(interval)
                _say(_line(interval))
                if producing and not halt.is_set() and interval.emulator_rss_mb > max_emulator_mb:
                    # moto keeps all data in memory: stop before it takes the machine down.
                    run.notes.append(
                        f"production stopped at {t:.0f} s: emulator RSS "
                        f"{interval.emulator_rss_mb:.0f} MB > {max_emulator_mb:g} MB"
                    )
                    _say(run.notes[-1])
                    halt.set()
                if samples_path is not None:
                    with samples_path.open("a") as f:
                        f.write(json.dumps(asdict(interval)) + "\n")
                last_t, last_produced = t, produced
                next_sample += sample_s
            if done:
                run.drain_s = time.monotonic() - drain_began
                break
            # Short naps: the end of production is noticed promptly.
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())) or 0.05)
    finally:
        stop.set()
        consumer.join()
        if producer.is_alive():
            producer.terminate()
        producer.join(timeout=10)
    stats = poller.stats
    run.notes.append(
        f"{stats.invocations} invocations ({stats.records_invoked} Kinesis records), "
        f"{stats.function_errors} function errors"
    )
    unmeasured = run.producer["produced"] - sampler.measured
    if unmeasured:
        run.notes.append(
            f"{unmeasured} events not measured after a {run.drain_s:.0f} s drain "
            f"(a consumer that fell behind, or invalid events)"
        )
    return run


# ---------------------------------------------------------------------- output
def plot(run: SoakRun, path: Path) -> None:
    """Consumer RSS, emulator RSS and lag p50/p99 per interval over time (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([i.t_s for i in run.intervals]) / 60.0
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    series = [
        (axes[0], "consumer_rss_mb", "consumer RSS (MB)", "consumer_rss_slope_mb_per_min", "MB"),
        (axes[1], "emulator_rss_mb", "emulator RSS (MB)", "emulator_rss_slope_mb_per_min", "MB"),
        (axes[2], "lag_p99_ms", "lag p99 (ms)", "lag_p99_slope_ms_per_min", "ms"),
    ]
    summary = run.summary()
    for axis, attr, label, slope_key, unit in series:
        values = np.array([getattr(i, attr) for i in run.intervals], dtype=float)
        axis.plot(t, values, marker=".", label=label)
        if attr == "lag_p99_ms":
            p50 = np.array([i.lag_p50_ms for i in run.intervals], dtype=float)
            axis.plot(t, p50, marker=".", label="lag p50 (ms)")
        slope = summary[slope_key]
        axis.set_ylabel(label)
        axis.set_title(f"{label}: slope {slope if slope is not None else 'n/a'} {unit}/min")
        axis.axvspan(0, run.warmup_s / 60.0, color="grey", alpha=0.15, label="warm-up")
        drain = [i.t_s / 60.0 for i in run.intervals if i.phase == "drain"]
        if drain:
            axis.axvspan(run.minutes, max(drain), color="orange", alpha=0.15, label="drain")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes since start")
    fig.suptitle(f"Soak: {run.rate:g} events/s for {run.minutes:g} min, {run.shards} shards")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def figures(run: SoakRun) -> list[Figure]:
    """The soak's figures for the JSON record."""
    s = run.summary()
    out = []
    if s["consumer_rss_slope_mb_per_min"] is not None:
        out.append(
            Figure(
                "consumer RSS slope",
                s["consumer_rss_slope_mb_per_min"],
                "MB/min",
                goal=f"<= {RSS_SLOPE_GOAL_MB_PER_MIN:g}",
                note="poller + handler process, after the warm-up",
            )
        )
    if s["emulator_rss_slope_mb_per_min"] is not None:
        out.append(
            Figure(
                "emulator RSS slope",
                s["emulator_rss_slope_mb_per_min"],
                "MB/min",
                note="moto keeps every record and object in memory: grows with the data",
            )
        )
    if s["lag_p99_slope_ms_per_min"] is not None:
        out.append(
            Figure(
                "lag p99 slope",
                s["lag_p99_slope_ms_per_min"],
                "ms/min",
                goal=f"<= {LAG_SLOPE_GOAL_MS_PER_MIN:g}",
                note="per-interval p99, after the warm-up",
            )
        )
    if s["lag_p99_median_of_intervals_ms"] is not None:
        out.append(Figure("lag p99 (median interval)", s["lag_p99_median_of_intervals_ms"], "ms"))
    out += [
        Figure(
            "achieved rate",
            s["achieved_events_per_s"],
            "events/s",
            baseline=run.rate,
            goal=">= 0.95",
            note="ratio to the target rate",
        ),
        Figure("events unmeasured after drain", s["unmeasured_after_drain"], "events", goal="<= 0"),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--skus", type=int, default=50, help="distinct SKUs in the events")
    parser.add_argument("--locations", type=int, default=10, help="distinct stores")
    parser.add_argument(
        "--max-emulator-mb",
        type=float,
        default=8000.0,
        help="stop producing when the emulator's RSS passes this (it keeps all data in memory)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args()
    stem = f"soak-{args.rate:g}eps-{args.minutes:g}min"
    json_path = args.out / f"{stem}.json"
    png_path = args.out / f"{stem}.png"
    config = SynthConfig(seed=11, n_skus=args.skus, n_locations=args.locations)

    # A plain kill (TERM) must still run the finally below and stop the emulator.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    pid, url = start_server()
    try:
        run = run_soak(
            url,
            pid,
            rate=args.rate,
            minutes=args.minutes,
            sample_s=args.sample,
            shards=args.shards,
            config=config,
            samples_path=args.out / f"{stem}.samples.jsonl",
            max_emulator_mb=args.max_emulator_mb,
        )
    finally:
        stop_server(pid)
    plot(run, png_path)
    summary = run.summary()
    write_json(
        json_path,
        "soak",
        figures(run),
        details={**summary, "png": str(png_path), "intervals": [asdict(i) for i in run.intervals]},
    )
    for figure in figures(run):
        verdict = "" if figure.passed is None else ("  ok" if figure.passed else "  MISSED")
        goal = f"  (goal {figure.goal})" if figure.goal else ""
        print(f"{figure.name}: {figure.value:g} {figure.unit}{goal}{verdict}")
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
