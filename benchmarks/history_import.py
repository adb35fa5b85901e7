"""History import benchmark: ``run_import`` against bare pyarrow writing the same rows.

Daily history (``--series`` SKU x location series over ``--days`` days, Parquet, with a
price and a promotion flag) is put under ``imports/`` of a bucket on the local emulator.
Each round, in a fresh process each and a fresh curated bucket and Glue database:

- **job**: :func:`pipeline.history.run_import` from the ``s3://`` object: read, check every
  row, the stream's days (none here), both tables' days, one commit each;
- **baseline**: bare pyarrow: GET the same object, add the ``year/month/day`` columns and
  write one Parquet object per day (the layout the Iceberg table has) with
  ``pyarrow.parquet.write_table``, each in one PUT to the same bucket; no checks, no catalog.
  (``pyarrow.dataset.write_dataset`` through pyarrow's S3 filesystem took 62 s for what this
  does in about 20: several requests per file on the emulator, a baseline too easy to beat.)

Printed: rows/s of each (medians over ``--rounds`` rounds that alternate which side goes
first), their ratio, and the job's re-import of the same file (nothing changes) in seconds.
The job writes each day twice (``demand_history`` and ``daily_demand``), so the baseline
writes half its files: the ratio counts that as the job's cost.

Usage: .venv/bin/python benchmarks/history_import.py [--series 300] [--days 730] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from _common import Figure, add_arguments, measure_in_process, write_json

SOURCE_KEY = "imports/history.parquet"


def _history(series: int, days: int, path: Path) -> int:
    """Write synthetic daily history (intermittent units, a price, promotions); its rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    start = date(2022, 1, 1)
    sku = np.repeat([f"SKU-{i // 10:05d}" for i in range(series)], days)
    location = np.repeat([f"STORE-{i % 10:03d}" for i in range(series)], days)
    day = np.tile(np.arange(days), series)
    promotion = rng.random(series * days) < 0.05
    units = rng.poisson(np.where(promotion, 3.0, 1.2))
    price = np.round(
        np.repeat(rng.uniform(0.5, 20, series), days) * np.where(promotion, 0.75, 1), 2
    )
    table = pa.table(
        {
            "item_id": sku,
            "store_id": location,
            "date": pa.array([start + timedelta(days=int(d)) for d in range(days)]).take(
                pa.array(day)
            ),
            "sales": units.astype("float64"),
            "sell_price": price,
            "promo": promotion,
        }
    )
    pq.write_table(table, path)
    rows: int = table.num_rows
    return rows


def _measure(mode: str, bucket: str, database: str) -> None:
    """Child process: one side into ``bucket``; elapsed seconds and rows as JSON."""
    import boto3
    import pandas  # noqa: F401 - pyarrow imports it lazily; not inside the timer
    import pyarrow as pa
    import pyarrow.acero  # noqa: F401
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.history import ColumnMapping, run_import

    session = boto3.session.Session()
    session.client("s3").list_buckets()
    source = f"s3://{bucket}/{SOURCE_KEY}"
    start = time.perf_counter()
    if mode == "baseline":
        # One Parquet object per day, as the table's layout has, each in one PUT (what the
        # job's uploads do too): pyarrow's dataset writer to S3 makes several requests per
        # file (multipart, directory markers) and would flatter the job.
        s3 = session.client("s3")
        body = s3.get_object(Bucket=bucket, Key=SOURCE_KEY)["Body"].read()
        rows = pq.read_table(pa.BufferReader(body))
        rows = rows.take(pc.sort_indices(rows.column("date")))
        days = rows.column("date")
        for name, code in (("year", "%Y"), ("month", "%m"), ("day", "%d")):
            rows = rows.append_column(name, pc.strftime(days, format=code))
        counts = pc.value_counts(days).to_pylist()
        offset = 0
        for entry in sorted(counts, key=lambda c: c["values"]):
            part = rows.slice(offset, entry["counts"])
            offset += entry["counts"]
            sink = pa.BufferOutputStream()
            pq.write_table(part, sink)
            day = entry["values"]
            key = f"baseline/year={day:%Y}/month={day:%m}/day={day:%d}/part.parquet"
            s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue().to_pybytes())
        count = rows.num_rows
    else:
        mapping = ColumnMapping(
            sku_id="item_id",
            location_id="store_id",
            date="date",
            units="sales",
            price="sell_price",
            promotion="promo",
        )
        report = run_import(
            source, mapping, curated_bucket=bucket, database=database, session=session
        )
        count = report.rows_read
        if mode == "reimport":
            # The timed import above found every day as it is: it must have written nothing.
            assert report.history_days_written == report.demand_days_written == 0, report  # noqa: S101
    print(json.dumps({"elapsed": time.perf_counter() - start, "rows": count}))


def _run_side(mode: str, bucket: str, database: str, env: dict[str, str]) -> dict[str, float]:
    result: dict[str, float] = measure_in_process(__file__, [mode, bucket, database], env, mode)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=300, help="SKU x location series")
    parser.add_argument("--days", type=int, default=730, help="days of history per series")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (each side first in half)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.measure:
        _measure(*args.measure)
        return
    if args.quick:
        args.series, args.days = min(args.series, 200), min(args.days, 365)

    import boto3

    from pipeline.local.emulator import local_environment, start_server, stop_server

    pid, url = start_server()
    env = {**os.environ, **local_environment(url)}
    os.environ.update(local_environment(url))
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "job": [], "reimport": []}
    try:
        session = boto3.session.Session()
        s3, glue = session.client("s3"), session.client("glue")
        with_source = Path(f"/tmp/history-bench-{os.getpid()}.parquet")  # noqa: S108
        rows = _history(args.series, args.days, with_source)
        for r in range(args.rounds):
            tag = uuid.uuid4().hex[:8]
            bucket, database = f"hist-{tag}", f"hist_{tag}"
            s3.create_bucket(Bucket=bucket)
            glue.create_database(DatabaseInput={"Name": database})
            s3.upload_file(str(with_source), bucket, SOURCE_KEY)
            for mode in ("baseline", "job")[:: 1 if r % 2 == 0 else -1]:
                runs[mode].append(_run_side(mode, bucket, database, env))
            runs["reimport"].append(_run_side("reimport", bucket, database, env))
        with_source.unlink()
    finally:
        stop_server(pid)
    elapsed = {mode: statistics.median(r["elapsed"] for r in done) for mode, done in runs.items()}
    per_second = {mode: rows / elapsed[mode] for mode in ("baseline", "job")}
    ratio = per_second["job"] / per_second["baseline"]
    print(
        f"{rows:,} rows over {args.days} days: job {elapsed['job']:.1f} s"
        f" ({per_second['job']:,.0f} rows/s), bare pyarrow {elapsed['baseline']:.1f} s"
        f" ({per_second['baseline']:,.0f} rows/s), ratio {ratio:.2f};"
        f" re-import (no change) {elapsed['reimport']:.1f} s"
    )
    figures = [
        Figure(
            f"history import throughput ({rows:,} rows, {args.days} days)",
            per_second["job"],
            "rows/s",
            baseline=per_second["baseline"],
            note="baseline: bare pyarrow read + write_table per day, one PUT each, to the same "
            f"bucket; medians of {args.rounds} rounds",
        ),
        Figure(
            "history re-import of the same file (nothing written)",
            elapsed["reimport"],
            "s",
            note=f"the first import took {elapsed['job']:.1f} s",
        ),
    ]
    write_json(
        args.json,
        "history_import",
        figures,
        quick=args.quick,
        details={"rows": rows, "series": args.series, "days": args.days, "runs": runs},
    )


if __name__ == "__main__":
    main()
