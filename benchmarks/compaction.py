"""Compaction benchmark: throughput against bare pyarrow, and memory as the day grows.

Prints, for raw NDJSON of one arrival day at 1x and 4x the size, the medians over
``--rounds`` rounds that alternate which side goes first (the machine is shared and noisy):
- the job's throughput in MB/s of raw NDJSON and the bare-pyarrow baseline's on the same
  objects in the same run (GET every object, ``pyarrow.json.read_json``, one
  ``pyarrow.parquet.write_table``, PUT), and their ratio (goal >= 0.7);
- the peak RSS of each (a fresh process each, so imports count once) and how much the
  job's peak grows from 1x to 4x (goal < 1.5x: the job streams per object and partition).

Each side does what it does by default: bare pyarrow is a plain loop (each ~1 MiB object
is one ``read_json`` block, so it parses on one core) and ``write_table``'s defaults; the
job parses several objects at once on every core and writes its unique-valued columns
without a dictionary. On 2 cores with the emulator on one of them, that is part of the
job's lead at the margin.

Usage: .venv/bin/python benchmarks/compaction.py [--mb 16] [--rounds 4]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import Figure, add_arguments, measure_in_process, write_json

OBJECT_BYTES = 1 << 20


def _events(target_bytes: int, seed: int) -> list[bytes]:
    """Raw objects (~1 MiB NDJSON each) of one arrival day, with duplicates and late events."""
    rng = random.Random(seed)
    day = datetime(2024, 6, 3, tzinfo=UTC)
    objects, lines, size, i = [], [], 0, 0
    recent: list[bytes] = []
    while size < target_bytes:
        if recent and rng.random() < 0.02:
            line = rng.choice(recent)  # a producer retry
        else:
            late = rng.random() < 0.05
            when = day - timedelta(days=rng.randint(1, 5)) if late else day
            when += timedelta(seconds=rng.randint(0, 86_399))
            kind = rng.choices(["sale", "return", "stock_count"], [90, 3, 7])[0]
            event = {
                "event_id": f"evt-{seed}-{i:09d}",
                "event_type": kind,
                "sku_id": f"SKU-{rng.randint(1, 500):05d}",
                "location_id": f"STORE-{rng.randint(1, 40):03d}",
                "quantity": 0 if kind == "stock_count" else rng.randint(1, 6),
                "event_time": when.isoformat(),
                "unit_price": round(rng.uniform(0.5, 20), 2),
                "promo": rng.random() < 0.1,
            }
            if kind == "stock_count" or rng.random() < 0.3:
                event["stock_on_hand"] = rng.randint(0, 200)
            line = json.dumps(event).encode()
            recent = [*recent[-50:], line]
            i += 1
        lines.append(line)
        size += len(line) + 1
        if sum(len(x) + 1 for x in lines) >= OBJECT_BYTES:
            objects.append(b"\n".join(lines) + b"\n")
            lines = []
    if lines:
        objects.append(b"\n".join(lines) + b"\n")
    return objects


def _measure(mode: str, raw: str, curated: str, database: str) -> None:
    """Child process: run one side, print elapsed, bytes and peak RSS as JSON.

    Imports happen before the timer on both sides, including the ones pyarrow makes lazily
    on first use (pandas on the first ``pa.array``/``pa.table``, acero on the first
    group-by), so the timings compare work, not which module happens to import what first.
    """
    import boto3
    import pandas  # noqa: F401
    import pyarrow as pa
    import pyarrow.acero  # noqa: F401
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from pipeline.compaction import run_compaction
    from pipeline.compaction.schema import RAW_SCHEMA

    # Both sides start from a session that has loaded S3's model, and make their own
    # clients inside the timer.
    session = boto3.session.Session()
    session.client("s3").list_buckets()
    start = time.perf_counter()
    if mode == "job":
        report = run_compaction(
            raw_bucket=raw, curated_bucket=curated, database=database, session=session
        )
        bytes_in = report.bytes_in
    else:
        # The same explicit contract schema the job reads with, so both parse the same work.
        options = pj.ParseOptions(explicit_schema=RAW_SCHEMA, unexpected_field_behavior="ignore")
        s3 = session.client("s3")
        tables, bytes_in = [], 0
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=raw, Prefix="sales/")
        for page in pages:
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=raw, Key=obj["Key"])["Body"].read()
                bytes_in += len(body)
                tables.append(pj.read_json(io.BytesIO(body), parse_options=options))
        sink = pa.BufferOutputStream()
        pq.write_table(pa.concat_tables(tables), sink)
        s3.put_object(
            Bucket=curated, Key="baseline/part.parquet", Body=sink.getvalue().to_pybytes()
        )
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, "bytes": bytes_in, "peak_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """This process's own peak RSS.

    Not ``ru_maxrss``: it survives ``execve``, so a child started by the parent (which
    has just generated the day's events) would report the parent's size. ``VmHWM`` is the
    high-water mark of the process's own address space.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_side(
    mode: str, raw: str, curated: str, database: str, env: dict[str, str]
) -> dict[str, float]:
    """One side in a fresh process (imports count once, peak RSS is its own)."""
    args = [mode, raw, curated, database]
    result: dict[str, float] = measure_in_process(__file__, args, env, mode)
    return result


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median elapsed time and peak RSS of a side's rounds (the bytes are the same)."""
    return {
        "elapsed": statistics.median(r["elapsed"] for r in runs),
        "bytes": runs[0]["bytes"],
        "peak_mb": statistics.median(r["peak_mb"] for r in runs),
    }


def _marginal(small: dict[str, float], large: dict[str, float]) -> float:
    """MB/s of the data the larger run adds over the smaller one."""
    return (large["bytes"] - small["bytes"]) / 1e6 / (large["elapsed"] - small["elapsed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=16, help="raw MB of the 1x day")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="rounds per size (medians; each side goes first in half)",
    )
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        # Not smaller: below ~16 MB the fixed per-run cost is most of what gets timed.
        args.mb = min(args.mb, 16)
    if args.measure:
        _measure(*args.measure)
        return

    from pipeline.local.emulator import local_environment, start_server, stop_server
    from pipeline.local.stack import LocalStack

    pid, url = start_server()
    env = {**os.environ, **local_environment(url)}
    os.environ.update(local_environment(url))
    rounds: dict[int, dict[str, list[dict[str, float]]]] = {}
    try:
        for factor in (1, 4):
            stack = LocalStack.create(url, stack_name=f"bench{factor}x")
            s3 = stack.session().client("s3")
            raw = stack.ref("RawBucket")
            for n, body in enumerate(_events(args.mb * factor << 20, seed=factor)):
                key = f"sales/2024/06/03/shardId-000000000000-{n:08d}-{n:08d}.json"
                s3.put_object(Bucket=raw, Key=key, Body=body)
            rounds[factor] = {"baseline": [], "job": []}
            for r in range(args.rounds):
                # Each round compacts into a fresh curated zone and catalog; the sides take
                # turns going first.
                target = LocalStack.create(url, stack_name=f"bench{factor}x-{r}")
                for mode in ("baseline", "job")[:: 1 if r % 2 == 0 else -1]:
                    rounds[factor][mode].append(
                        _run_side(
                            mode,
                            raw,
                            target.ref("CuratedBucket"),
                            target.ref("LakeDatabase"),
                            env,
                        )
                    )
    finally:
        stop_server(pid)
    results = {
        factor: {mode: _median(runs) for mode, runs in sides.items()}
        for factor, sides in rounds.items()
    }
    for factor, sides in results.items():
        mbps = {m: r["bytes"] / 1e6 / r["elapsed"] for m, r in sides.items()}
        print(
            f"{factor}x ({sides['job']['bytes'] / 1e6:.1f} MB raw): job {mbps['job']:.1f} MB/s,"
            f" bare pyarrow {mbps['baseline']:.1f} MB/s,"
            f" ratio {mbps['job'] / mbps['baseline']:.2f};"
            f" peak RSS job {sides['job']['peak_mb']:.0f} MB,"
            f" bare pyarrow {sides['baseline']['peak_mb']:.0f} MB"
        )
    # Time = fixed per-run cost + size / marginal throughput; two sizes separate the two.
    # The job's fixed cost is its safety work (manifest read and commit, one object per day
    # and table, catalog registration): about 20 requests, whatever the size.
    marginal = {m: _marginal(results[1][m], results[4][m]) for m in ("job", "baseline")}
    fixed = {
        m: results[1][m]["elapsed"] - results[1][m]["bytes"] / 1e6 / marginal[m] for m in marginal
    }
    print(
        f"marginal throughput 1x -> 4x: job {marginal['job']:.1f} MB/s, bare pyarrow"
        f" {marginal['baseline']:.1f} MB/s, ratio {marginal['job'] / marginal['baseline']:.2f};"
        f" fixed cost per run: job {fixed['job'] * 1000:.0f} ms,"
        f" bare pyarrow {fixed['baseline'] * 1000:.0f} ms"
    )
    growth = results[4]["job"]["peak_mb"] / results[1]["job"]["peak_mb"]
    base_growth = results[4]["baseline"]["peak_mb"] / results[1]["baseline"]["peak_mb"]
    print(
        f"peak RSS growth 1x -> 4x: job {growth:.2f}x (goal < 1.5x),"
        f" bare pyarrow {base_growth:.2f}x"
    )
    figures = []
    for factor, sides in results.items():
        mbps = {m: r["bytes"] / 1e6 / r["elapsed"] for m, r in sides.items()}
        figures.append(
            Figure(
                f"compaction throughput {factor}x ({args.mb * factor} MB)",
                mbps["job"],
                "MB/s",
                baseline=mbps["baseline"],
                goal=">= 0.7",
                note=(
                    "baseline: bare pyarrow read_json + write_table;"
                    f" medians of {args.rounds} rounds"
                ),
            )
        )
    figures.append(
        Figure(
            "compaction marginal throughput (1x -> 4x)",
            marginal["job"],
            "MB/s",
            baseline=marginal["baseline"],
            note="the added MB over the added seconds; fixed per-run costs cancel",
        )
    )
    figures.append(
        Figure(
            "compaction fixed cost per run",
            fixed["job"] * 1000,
            "ms",
            note=f"bare pyarrow {fixed['baseline'] * 1000:.0f} ms",
        )
    )
    figures.append(
        Figure(
            "compaction peak RSS growth 1x -> 4x",
            growth,
            "x",
            goal="< 1.5",
            note=f"bare pyarrow grows {base_growth:.2f}x",
        )
    )
    write_json(
        args.json,
        "compaction",
        figures,
        quick=args.quick,
        details={
            "rounds": args.rounds,
            "medians": {str(factor): sides for factor, sides in results.items()},
            "runs": {str(factor): sides for factor, sides in rounds.items()},
        },
    )


if __name__ == "__main__":
    main()
