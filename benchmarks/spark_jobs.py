"""Both Glue jobs on Spark (local mode, 1 and 2 cores) against the single-process path.

One run, one emulator, the same input for every side: raw NDJSON for the compaction job
(compaction.py's generator: duplicates, late events) and a daily demand table for the
forecast job (forecaster_scale.py's intermittent series). Each side gets a stack of its
own, so no side finds another's output. Reported as ratios to the single-process time of
the same run, plus per-core rates for the README's scale projection. The Spark session
is started before the timer (a Glue job pays that once per run, a few seconds).

On these 2-core machines the emulator (moto, one process) shares the cores with Spark's
workers, and every S3 and DynamoDB call crosses it: the 2-core Spark figures understate
what 2 dedicated executors do.

Usage: .venv/bin/python benchmarks/spark_jobs.py [--mb 16] [--series 2000] [--days 365]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from _common import Figure, add_arguments, write_json
from compaction import _events
from forecaster_scale import synthetic_history

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack

END = date(2024, 6, 30)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=16, help="raw NDJSON to compact")
    parser.add_argument("--series", type=int, default=2000, help="series to forecast")
    parser.add_argument("--days", type=int, default=365, help="days of history")
    add_arguments(parser)
    args = parser.parse_args()
    mb, series, days = (4, 500, 180) if args.quick else (args.mb, args.series, args.days)

    from pipeline.local.emulator import local_environment, start_server, stop_server
    from pipeline.local.stack import LocalStack
    from pipeline.spark.session import spark_session

    pid, url = start_server()
    os.environ.update(local_environment(url))
    objects = _events(mb << 20, seed=5)
    results: dict[str, dict[str, float]] = {}
    events = rows = 0
    try:
        for side in ("single", "spark-1", "spark-2"):
            # One stack per job: compaction's daily demand must not mix with the forecast's.
            compacting = LocalStack.create(url, stack_name=f"bench-{side}-c")
            forecasting = LocalStack.create(url, stack_name=f"bench-{side}-f")
            _put_raw(compacting, objects)
            rows = _put_demand(forecasting, series, days)
            spark = (
                spark_session(f"bench-{side}", cores=int(side[-1])) if side != "single" else None
            )
            compact_s, report = _timed(
                partial(_compact, spark, compacting.ref("RawBucket"), _lake(compacting))
            )
            events = report.events_in
            forecast_s, outcome = _timed(
                partial(_forecast, spark, forecasting.ref("ForecastTable"), _lake(forecasting))
            )
            if spark is not None:
                spark.stop()
            results[side] = {
                "compaction_s": round(compact_s, 2),
                "forecast_s": round(forecast_s, 2),
                "series": outcome.series,
                "items": outcome.items_written,
            }
            print(side, results[side], flush=True)
    finally:
        stop_server(pid)

    single = results["single"]
    figures = []
    for job, key in (("compaction", "compaction_s"), ("forecast", "forecast_s")):
        for side in ("spark-1", "spark-2"):
            figures.append(
                Figure(
                    f"{job} on {side.replace('-', ' ')} core(s), time",
                    results[side][key],
                    "s",
                    baseline=single[key],
                    note="baseline: the single-process path, same input, same run",
                )
            )
        figures.append(
            Figure(
                f"{job} on spark, 2 cores over 1 core",
                round(results["spark-2"][key] / results["spark-1"][key], 3),
                "x",
            )
        )
    rates = {
        "compaction_events_per_s_single": round(events / single["compaction_s"]),
        "compaction_events_per_s_spark_1_core": round(events / results["spark-1"]["compaction_s"]),
        "forecast_series_per_s_single": round(series / single["forecast_s"], 1),
        "forecast_series_per_s_spark_1_core": round(series / results["spark-1"]["forecast_s"], 1),
    }
    print(rates)
    write_json(
        args.json,
        "spark_jobs",
        figures,
        quick=args.quick,
        details={
            "raw_mb": mb,
            "events": events,
            "series": series,
            "days": days,
            "demand_rows": rows,
            "sides": results,
            "rates": rates,
        },
    )


if __name__ == "__main__":
    main()
