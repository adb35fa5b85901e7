"""Soak: R events/s for N minutes with the local poller consuming concurrently (not in CI).

Produces synthetic live events at a steady rate through the real producer, while a
:class:`~pipeline.local.poller.LocalPoller` runs the real ingest handler in another thread.
Every ``--sample`` seconds it records this process's RSS and the stream lag (p99 of the
``StreamLagMilliseconds`` values of the last interval), then fits a line to each series:
flat means the slope over the second half of the run is within noise.

    .venv/bin/python benchmarks/soak.py --minutes 30 --rate 1000
"""

from __future__ import annotations

import argparse
import math
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline.local.emulator import local_environment, start_server, stop_server
from pipeline.local.invoke import load_handler, patched_environ
from pipeline.local.poller import LocalPoller
from pipeline.local.stack import LocalStack
from pipeline.produce import Producer
from pipeline.synth import SynthConfig, live_events


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _slope_per_min(times: list[float], values: list[float]) -> float:
    """Least-squares slope (units per minute) over the second half (after warm-up)."""
    half = len(times) // 2
    t, v = np.array(times[half:]), np.array(values[half:])
    if len(t) < 2:
        return float("nan")
    return float(np.polyfit(t / 60.0, v, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()

    pid, url = start_server()
    try:
        with patched_environ(local_environment(url)):
            stack = LocalStack.create(url, stack_name=f"soak{uuid.uuid4().hex[:6]}")
            run(stack, args.minutes, args.rate, args.sample)
    finally:
        stop_server(pid)


def run(stack: LocalStack, minutes: float, rate: int, sample_s: float) -> None:
    """Produce and consume for ``minutes``; print the samples and the slopes."""
    session = stack.session()
    producer = Producer(session.client("kinesis"), stack.ref("SalesStream"), aggregate=True)
    poller = LocalPoller(stack, "IngestStreamFunction", load_handler(stack, "IngestStreamFunction"))
    config = SynthConfig(seed=11, n_skus=50, n_locations=10)
    stop = threading.Event()
    consumer = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    consumer.start()

    started = time.monotonic()
    deadline = started + minutes * 60
    next_sample = started + sample_s
    produced = 0
    times: list[float] = []
    rss: list[float] = []
    lag_p99: list[float] = []
    seen_lags = 0
    print(f"soak: {rate} events/s for {minutes} min; sampling every {sample_s} s")
    print(f"{'t_s':>7} {'produced':>10} {'checkpointed':>12} {'rss_mb':>8} {'lag_p99_ms':>10}")
    while time.monotonic() < deadline:
        second = time.monotonic()
        producer.put(live_events(config, datetime.now(UTC), rate, first_index=produced))
        produced += rate
        now = time.monotonic()
        if now >= next_sample:
            lags = poller.stats.lags_ms[seen_lags:]
            seen_lags += len(lags)
            # Keep the poller's own list from growing without bound in a long run.
            del poller.stats.lags_ms[:seen_lags]
            seen_lags = 0
            times.append(now - started)
            rss.append(_rss_mb())
            lag_p99.append(float(np.percentile(lags, 99)) if lags else float("nan"))
            print(
                f"{times[-1]:7.0f} {produced:10,} {poller.stats.records_checkpointed:12,} "
                f"{rss[-1]:8.1f} {lag_p99[-1]:10.0f}"
            )
            next_sample += sample_s
        time.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
    stop.set()
    consumer.join(timeout=30)
    finite = [(t, v) for t, v in zip(times, lag_p99, strict=True) if not math.isnan(v)]
    rss_slope = _slope_per_min(times, rss)
    lag_slope = _slope_per_min([t for t, _ in finite], [v for _, v in finite])
    print(f"produced {produced:,} events in {(time.monotonic() - started) / 60:.1f} min")
    print(f"RSS: start {rss[0]:.1f} MB, end {rss[-1]:.1f} MB, slope {rss_slope:+.2f} MB/min")
    print(f"lag p99: slope {lag_slope:+.1f} ms/min over the second half")


if __name__ == "__main__":
    main()
