"""Both Glue jobs on Spark (local mode, 1 and 2 cores) against the single-process path.

One run, one emulator, the same input for every side: raw NDJSON for the compaction job
(compaction.py's generator: duplicates, late events) and a daily demand table for the
forecast job (forecaster_scale.py's intermittent series). Each run gets a stack of its
own, so no run finds another's output. The Spark session is started before the timer (a
Glue job pays that once per run, a few seconds).

Compaction, per engine: first a warm-up run (JVM class loading and JIT, heap growth,
Python workers, imports: not in the figures) on other events of ``--mb`` (``--warm-up-mb``;
after a 1 MB warm-up Spark's first 4 MB run on one core still took ~6 s longer than the
next ones), then ``--mb`` and twice that, ``--rounds``
times each (the order of the sizes alternating from one round to the next; the median of
each size counts). Reported: the whole runs' times, and the marginal throughput (extra MB
/ extra seconds) of each engine, which leaves out what a run pays whatever its size
(Iceberg commits, listings, job scheduling); Spark on one core against the single
process, goal >= 0.5x.

Where the time goes: the emulator counts the requests it serves (``pipeline.local.server``,
at ``/_fmcg/requests``: Spark's Java S3 and Glue clients never pass through boto3), read
before and after each run. A calibration on the quiet emulator, in the same run, times
small and 1 MiB S3 GETs and PUTs from a minimal HTTP client: requests x cost per request +
bytes x cost per byte estimates the seconds the run spent waiting on the emulator, given as
a share of the run; beside it the seconds the emulator measured inside moto itself.

On these 2-core machines the emulator (moto, one process, one request at a time) shares
the cores with Spark's workers, and every S3, Glue and DynamoDB call crosses it: the
2-core Spark figures understate what 2 dedicated executors do.

Usage: .venv/bin/python benchmarks/spark_jobs.py [--mb 16] [--rounds 1] [--warm-up-mb N]
       [--series 2000] [--days 365]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import time
import urllib.request
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
from _common import Figure, add_arguments, write_json
from compaction import _events
from forecaster_scale import synthetic_history

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack

END = date(2024, 6, 30)
SIDES = ("single", "spark-1", "spark-2")
#: The emulator's own figures (``pipeline.local.server.REQUESTS_PATH``).
REQUESTS_PATH = "/_fmcg/requests"
CALIBRATION_BUCKET = "fmcg-bench-calibration"
#: Requests of each kind the calibration times (small objects; 1 MiB ones).
CALIBRATION_SMALL, CALIBRATION_LARGE = 200, 12
#: moto does not check signatures: it routes a request by its credential scope.
S3_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20240603/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
MIB = 1 << 20


def _put_raw(stack: LocalStack, objects: list[bytes]) -> None:
    s3 = stack.session().client("s3")
    for i, body in enumerate(objects):
        key = f"sales/2024/06/03/shardId-000000000000-{i:012d}-{i:012d}.json"
        s3.put_object(Bucket=stack.ref("RawBucket"), Key=key, Body=body)


def _put_demand(stack: LocalStack, series: int, days: int) -> int:
    """The synthetic history appended to the stack's ``daily_demand`` Iceberg table."""
    from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA
    from pipeline.lake.tables import (
        DAILY_DEMAND,
        ensure_table,
        iceberg_catalog,
        with_partition_columns,
    )

    history = synthetic_history(series, days)
    skus = [f"SKU-{i // 10:05d}" for i in range(series)]
    stores = [f"STORE-{i % 10:02d}" for i in range(series)]
    tables = []
    for t in range(days):
        known = ~np.isnan(history[:, t]) | (t >= np.argmax(~np.isnan(history), axis=1))
        index = np.flatnonzero(known)
        sold = np.nan_to_num(history[index, t]).astype(np.int64)
        tables.append(
            pa.table(
                {
                    "sku_id": [skus[i] for i in index],
                    "location_id": [stores[i] for i in index],
                    "date": pa.array(
                        [END - timedelta(days=days - 1 - t)] * len(index), pa.date32()
                    ),
                    "units_sold": sold,
                    "units_returned": np.zeros(len(index), np.int64),
                    "end_of_day_stock": np.where(np.isnan(history[index, t]), 0, 5),
                    "stockout": np.isnan(history[index, t]),
                    "avg_unit_price": pa.nulls(len(index), pa.float64()),
                },
                schema=DAILY_DEMAND_SCHEMA,
            )
        )
    rows = pa.concat_tables(tables)
    session = stack.session()
    table = ensure_table(
        iceberg_catalog(session),
        stack.ref("LakeDatabase"),
        stack.ref("CuratedBucket"),
        DAILY_DEMAND,
    )
    table.append(with_partition_columns(rows, DAILY_DEMAND))
    return int(rows.num_rows)


def _lake(stack: LocalStack) -> dict[str, Any]:
    return {
        "curated_bucket": stack.ref("CuratedBucket"),
        "database": stack.ref("LakeDatabase"),
        "session": stack.session(),
    }


def _compact(spark: Any, raw_bucket: str, lake: dict[str, Any]) -> Any:
    from pipeline.compaction import run_compaction
    from pipeline.spark.compaction import run_compaction_spark

    if spark is None:
        return run_compaction(raw_bucket=raw_bucket, **lake)
    return run_compaction_spark(spark=spark, raw_bucket=raw_bucket, **lake)


def _forecast(spark: Any, table: str, lake: dict[str, Any]) -> Any:
    from pipeline.forecasting.job import run_forecast
    from pipeline.spark.forecasting import run_forecast_spark

    if spark is None:
        return run_forecast(forecast_table=table, **lake)
    return run_forecast_spark(spark=spark, forecast_table=table, **lake)


def _timed(run: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def _served(url: str) -> dict[str, dict[str, float]]:
    """The emulator's requests served so far, per ``service:operation``."""
    with urllib.request.urlopen(f"{url}{REQUESTS_PATH}", timeout=30) as response:  # noqa: S310 - our loopback emulator
        operations: dict[str, dict[str, float]] = json.load(response)["operations"]
    return operations


def _since(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> Any:
    """The requests served between two readings of :func:`_served`."""
    served = {}
    for operation, row in after.items():
        earlier = before.get(operation, {})
        delta = {name: value - earlier.get(name, 0) for name, value in row.items()}
        if delta["requests"]:
            served[operation] = delta
    return served


def _calibrate(url: str, stack: LocalStack) -> dict[str, float]:
    """The emulator's cost per request and per byte, timed on the quiet emulator from a
    minimal client (one keep-alive connection, no SDK): the medians of small and 1 MiB S3
    PUTs and GETs, and what moto itself measured of the small ones."""
    stack.session().client("s3").create_bucket(Bucket=CALIBRATION_BUCKET)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    headers = {"Authorization": S3_AUTHORIZATION}

    def timed(method: str, key: str, body: bytes | None = None) -> float:
        started = time.perf_counter()
        connection.request(method, f"/{CALIBRATION_BUCKET}/{key}", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise SystemExit(f"calibration {method} {key}: HTTP {response.status}")
        return time.perf_counter() - started

    small, large = b"x" * 100, os.urandom(MIB)
    before = _served(url)
    put_small = statistics.median(
        timed("PUT", f"small/{i}", small) for i in range(CALIBRATION_SMALL)
    )
    get_small = statistics.median(timed("GET", f"small/{i}") for i in range(CALIBRATION_SMALL))
    moto = _since(before, _served(url))
    put_large = statistics.median(
        timed("PUT", f"large/{i}", large) for i in range(CALIBRATION_LARGE)
    )
    get_large = statistics.median(timed("GET", f"large/{i}") for i in range(CALIBRATION_LARGE))
    connection.close()
    small_requests = sum(r["requests"] for r in moto.values())
    per_byte = ((put_large - put_small) + (get_large - get_small)) / 2 / MIB
    return {
        "small_put_ms": round(put_small * 1e3, 3),
        "small_get_ms": round(get_small * 1e3, 3),
        "mib_put_ms": round(put_large * 1e3, 3),
        "mib_get_ms": round(get_large * 1e3, 3),
        "per_request_ms": round((put_small + get_small) / 2 * 1e3, 3),
        "per_mib_ms": round(max(per_byte, 0.0) * MIB * 1e3, 3),
        "small_inside_moto_ms": round(
            sum(r["seconds"] for r in moto.values()) / max(small_requests, 1) * 1e3, 3
        ),
    }


def _compaction_run(
    spark: Any, url: str, stack_name: str, objects: list[bytes], calibration: dict[str, float]
) -> dict[str, Any]:
    """One timed compaction on a fresh stack, with the requests the emulator served during
    it and the share of the run they account for."""
    from pipeline.local.stack import LocalStack

    stack = LocalStack.create(url, stack_name=stack_name)
    _put_raw(stack, objects)
    before = _served(url)
    seconds, report = _timed(partial(_compact, spark, stack.ref("RawBucket"), _lake(stack)))
    served = _since(before, _served(url))
    requests = int(sum(r["requests"] for r in served.values()))
    moved = sum(r["bytes_in"] + r["bytes_out"] for r in served.values())
    estimated = (
        requests * calibration["per_request_ms"] + moved / MIB * calibration["per_mib_ms"]
    ) / 1e3
    inside_moto = sum(r["seconds"] for r in served.values())
    services: dict[str, int] = {}
    for operation, row in served.items():
        service = operation.partition(":")[0]
        services[service] = services.get(service, 0) + int(row["requests"])
    return {
        "mb": round(sum(map(len, objects)) / MIB, 3),
        "seconds": round(seconds, 3),
        "events": report.events_in,
        "requests": requests,
        "by_service": dict(sorted(services.items())),
        "operations": {
            op: int(row["requests"])
            for op, row in sorted(served.items(), key=lambda kv: -kv[1]["requests"])
        },
        "mib_moved": round(moved / MIB, 2),
        "emulator_estimated_s": round(estimated, 3),
        "emulator_estimated_share": round(estimated / seconds, 3),
        "inside_moto_s": round(inside_moto, 3),
        "inside_moto_share": round(inside_moto / seconds, 3),
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One size's runs as one: the median time (every time kept), its requests (the same
    in every round), the emulator's seconds and shares against the median time."""
    seconds = statistics.median(run["seconds"] for run in runs)
    inside_moto = statistics.median(run["inside_moto_s"] for run in runs)
    estimated = statistics.median(run["emulator_estimated_s"] for run in runs)
    return {
        **runs[0],
        "seconds": round(seconds, 3),
        "rounds_s": [run["seconds"] for run in runs],
        "emulator_estimated_s": round(estimated, 3),
        "emulator_estimated_share": round(estimated / seconds, 3),
        "inside_moto_s": round(inside_moto, 3),
        "inside_moto_share": round(inside_moto / seconds, 3),
    }


def _marginal(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """From one size to the next: MB/s of the extra input, and the share of the extra
    seconds the emulator accounts for (``None`` when the larger run was not slower)."""
    extra_s = large["seconds"] - small["seconds"]
    if extra_s <= 0:
        return {"extra_s": round(extra_s, 3), "mb_per_s": None, "emulator_estimated_share": None}
    extra_emulator = large["emulator_estimated_s"] - small["emulator_estimated_s"]
    return {
        "extra_s": round(extra_s, 3),
        "mb_per_s": round((large["mb"] - small["mb"]) / extra_s, 3),
        "emulator_estimated_share": round(extra_emulator / extra_s, 3),
        "inside_moto_share": round((large["inside_moto_s"] - small["inside_moto_s"]) / extra_s, 3),
    }


def _compaction_figures(
    compaction: dict[str, dict[str, Any]], sizes: tuple[int, int]
) -> list[Figure]:
    """Whole runs against the single process, marginal throughputs, the emulator's share."""
    single = compaction["single"]
    figures = []
    for index, size in enumerate(sizes):
        for side in SIDES[1:]:
            figures.append(
                Figure(
                    f"compaction whole run, {size} MB, on {side.replace('-', ' ')} core(s), time",
                    compaction[side]["runs"][index]["seconds"],
                    "s",
                    baseline=single["runs"][index]["seconds"],
                    note="a whole run after a warm-up run (fixed costs included); "
                    "baseline: the single-process path, same input, same run",
                )
            )
    whole = [compaction[side]["runs"][0]["seconds"] for side in SIDES[1:]]
    figures.append(
        Figure(
            f"compaction whole run, {sizes[0]} MB, on spark, 2 cores over 1 core",
            round(whole[1] / whole[0], 3),
            "x",
        )
    )
    base = single["marginal"]["mb_per_s"]
    note = (
        f"(extra MB) / (extra s) from {sizes[0]} to {sizes[1]} MB, each engine warmed up; "
        "baseline: the single process's, same run"
    )
    figures.append(Figure("compaction marginal throughput, single process", base or 0.0, "MB/s"))
    for side in SIDES[1:]:
        value = compaction[side]["marginal"]["mb_per_s"]
        if value is None or base is None:
            figures.append(
                Figure(
                    f"compaction marginal throughput on {side.replace('-', ' ')} core(s)",
                    0.0,
                    "MB/s",
                    note="not measurable in this run: a larger input took no longer than "
                    "the smaller one (noise; more --rounds or a larger --mb); no verdict",
                )
            )
            continue
        figures.append(
            Figure(
                f"compaction marginal throughput on {side.replace('-', ' ')} core(s)",
                value,
                "MB/s",
                baseline=base,
                goal=">= 0.5" if side == "spark-1" else None,
                note=note,
            )
        )
    for side in SIDES:
        for run in compaction[side]["runs"]:
            figures.append(
                Figure(
                    f"compaction at {run['mb']:.0f} MB on {side}, emulator share of the run",
                    run["emulator_estimated_share"],
                    "",
                    note=f"{run['requests']} requests x calibrated cost per request + "
                    f"{run['mib_moved']} MiB x cost per MiB, over {run['seconds']} s",
                )
            )
    return figures


def _print_compaction(
    compaction: dict[str, dict[str, Any]],
    calibration: dict[str, float],
    figures: list[Figure],
    warm_up_mb: int,
) -> None:
    print(
        f"\ncompaction, after a {warm_up_mb} MB warm-up run per engine. Emulator cost, "
        f"calibrated: {calibration['per_request_ms']} ms per request + "
        f"{calibration['per_mib_ms']} ms per MiB (minimal client; inside moto "
        f"{calibration['small_inside_moto_ms']} ms of a small request)"
    )
    print(
        f"{'side':8} {'MB':>6} {'run s':>7} {'requests':>8} {'emul. est':>9} {'in moto':>8}"
        "  requests by service"
    )
    for side in SIDES:
        for run in compaction[side]["runs"]:
            print(
                f"{side:8} {run['mb']:6.1f} {run['seconds']:7.2f} {run['requests']:8d} "
                f"{run['emulator_estimated_share']:9.1%} {run['inside_moto_share']:8.1%}  "
                f"{run['by_service']}"
            )
    for side in SIDES:
        margin = compaction[side]["marginal"]
        if margin["mb_per_s"] is None:
            print(f"{side:8} marginal: not measurable (the larger run took {margin['extra_s']} s)")
            continue
        print(
            f"{side:8} marginal: {margin['mb_per_s']:.2f} MB/s over {margin['extra_s']:.2f} "
            f"extra s, emulator ~{margin['emulator_estimated_share']:.0%} of them"
        )
    for figure in figures:
        if figure.goal:
            verdict = "met" if figure.passed else "NOT met"
            print(f"{figure.name}: {figure.ratio:.3f}x the single process", end=" ")
            print(f"(goal {figure.goal}: {verdict})")
    top = {side: list(compaction[side]["runs"][-1]["operations"].items())[:6] for side in SIDES}
    for side, operations in top.items():
        print(f"{side:8} top operations at the larger size: {operations}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=16, help="raw NDJSON to compact (and twice it)")
    parser.add_argument("--series", type=int, default=2000, help="series to forecast")
    parser.add_argument("--days", type=int, default=365, help="days of history")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="compactions of each size per engine (the median counts; the order alternates)",
    )
    parser.add_argument(
        "--warm-up-mb", type=int, default=None, help="raw NDJSON of the warm-up (--mb's)"
    )
    add_arguments(parser)
    args = parser.parse_args()
    mb, series, days = (4, 500, 180) if args.quick else (args.mb, args.series, args.days)
    sizes = (mb, 2 * mb)

    from pipeline.local.emulator import local_environment, start_server, stop_server
    from pipeline.local.stack import LocalStack
    from pipeline.spark.session import spark_session

    pid, url = start_server()
    os.environ.update(local_environment(url))
    warm_up_mb = args.warm_up_mb or mb
    warm_up = _events(warm_up_mb * MIB, seed=7)
    inputs = [_events(size * MIB, seed=5) for size in sizes]
    results: dict[str, dict[str, float]] = {}
    compaction: dict[str, dict[str, Any]] = {}
    rows = 0
    try:
        calibration = _calibrate(url, LocalStack.create(url, stack_name="bench-calibration"))
        print("emulator calibration", calibration, flush=True)
        for side in SIDES:
            spark = (
                spark_session(f"bench-{side}", cores=int(side[-1])) if side != "single" else None
            )
            # Each run on a stack of its own: no run finds another's tables or manifest.
            warm = _compaction_run(spark, url, f"bench-{side}-cw", warm_up, calibration)
            rounds: list[list[dict[str, Any]]] = [[] for _ in sizes]
            for n in range(args.rounds):
                # Alternate which size goes first: a bias of the first run falls on both.
                order = range(len(sizes)) if n % 2 == 0 else reversed(range(len(sizes)))
                for i in order:
                    stack_name = f"bench-{side}-c{sizes[i]}-{n}"
                    rounds[i].append(
                        _compaction_run(spark, url, stack_name, inputs[i], calibration)
                    )
            runs = [_median_run(of_size) for of_size in rounds]
            compaction[side] = {
                "warm_up": warm,
                "runs": runs,
                "marginal": _marginal(runs[0], runs[1]),
            }
            forecasting = LocalStack.create(url, stack_name=f"bench-{side}-f")
            rows = _put_demand(forecasting, series, days)
            forecast_s, outcome = _timed(
                partial(_forecast, spark, forecasting.ref("ForecastTable"), _lake(forecasting))
            )
            if spark is not None:
                spark.stop()
            results[side] = {
                "compaction_s": runs[0]["seconds"],
                "forecast_s": round(forecast_s, 2),
                "series": outcome.series,
                "items": outcome.items_written,
            }
            print(
                side,
                results[side],
                "warm-up",
                warm["seconds"],
                "s; compaction",
                [(run["mb"], run["seconds"], run["requests"]) for run in runs],
                flush=True,
            )
    finally:
        stop_server(pid)

    single = results["single"]
    figures = _compaction_figures(compaction, sizes)
    for side in SIDES[1:]:
        figures.append(
            Figure(
                f"forecast on {side.replace('-', ' ')} core(s), time",
                results[side]["forecast_s"],
                "s",
                baseline=single["forecast_s"],
                note="baseline: the single-process path, same input, same run",
            )
        )
    figures.append(
        Figure(
            "forecast on spark, 2 cores over 1 core",
            round(results["spark-2"]["forecast_s"] / results["spark-1"]["forecast_s"], 3),
            "x",
        )
    )
    events = compaction["single"]["runs"][0]["events"]
    rates = {
        "compaction_events_per_s_single": round(events / single["compaction_s"]),
        "compaction_events_per_s_spark_1_core": round(events / results["spark-1"]["compaction_s"]),
        "forecast_series_per_s_single": round(series / single["forecast_s"], 1),
        "forecast_series_per_s_spark_1_core": round(series / results["spark-1"]["forecast_s"], 1),
    }
    _print_compaction(compaction, calibration, figures, warm_up_mb)
    print(rates)
    write_json(
        args.json,
        "spark_jobs",
        figures,
        quick=args.quick,
        details={
            "raw_mb": mb,
            "compaction_sizes_mb": list(sizes),
            "warm_up_mb": warm_up_mb,
            "compaction_rounds": args.rounds,
            "events": events,
            "series": series,
            "days": days,
            "demand_rows": rows,
            "sides": results,
            "compaction": compaction,
            "emulator_calibration": calibration,
            "rates": rates,
        },
    )


if __name__ == "__main__":
    main()
