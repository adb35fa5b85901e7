"""Local query time as an Iceberg table's commits accumulate: planning follows the manifests.

``fmcg query`` plans each Iceberg table it names with PyIceberg (every manifest of the
current snapshot), then reads the planned data files. Against the emulator, one table with
the curated tables' properties (appends merge manifests) and one without manifest merging
(PyIceberg's default) get the same one-day appends, one commit each; at each checkpoint the
script times ``SELECT count(*)`` (every file) and a one-day query (one file) through
:func:`pipeline.query.run_query`, and counts the snapshot's manifests. With merging, the
manifests, and so the plan, stay bounded as commits grow; without, both grow with every
commit.

Usage: .venv/bin/python benchmarks/query_planning.py [--quick] [--json P]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import date, timedelta
from typing import Any

from _common import Figure, add_arguments, write_json

FIRST_DAY = date(2026, 1, 1)


def _rows(day: date) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "sku_id": ["SKU-1", "SKU-2"],
            "location_id": ["LOC-1", "LOC-1"],
            "date": [day, day],
            "units_sold": [1, 2],
            "units_returned": [0, 0],
            "end_of_day_stock": [5, 0],
            "stockout": [False, True],
            "avg_unit_price": [2.0, None],
        }
    )


def _timed(query: Any, sql: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        query(sql)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--checkpoints", type=int, nargs="+", default=[50, 100, 150, 250], help="commit counts"
    )
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.checkpoints = [50, 150]

    from pipeline.lake.tables import (
        DAILY_DEMAND,
        TABLE_PROPERTIES,
        TableSpec,
        ensure_table,
        iceberg_catalog,
        with_partition_columns,
    )
    from pipeline.local.emulator import aws_session, local_environment, start_server, stop_server
    from pipeline.query import run_query

    pid, url = start_server()
    os.environ.update(local_environment(url))
    results: list[dict[str, Any]] = []
    try:
        session = aws_session(url)
        name = f"qp{uuid.uuid4().hex[:8]}"
        session.client("s3").create_bucket(Bucket=name)
        session.client("glue").create_database(DatabaseInput={"Name": name})
        catalog = iceberg_catalog(session)
        merged = ensure_table(catalog, name, name, DAILY_DEMAND)
        unmerged_spec = TableSpec("daily_demand_unmerged", DAILY_DEMAND.columns, "date")
        unmerged = catalog.create_table(
            (name, unmerged_spec.name),
            merged.schema(),
            location=f"s3://{name}/{unmerged_spec.name}",
            partition_spec=merged.spec(),
            properties={**TABLE_PROPERTIES, "commit.manifest-merge.enabled": "false"},
        )

        def query(sql: str) -> Any:
            return run_query(sql, curated_bucket=name, database=name, session=session)

        commits = 0
        for checkpoint in args.checkpoints:
            while commits < checkpoint:
                day = FIRST_DAY + timedelta(days=commits)
                merged.append(with_partition_columns(_rows(day), DAILY_DEMAND))
                unmerged.append(with_partition_columns(_rows(day), unmerged_spec))
                commits += 1
            last = FIRST_DAY + timedelta(days=commits - 1)
            one_day = f"year = '{last:%Y}' AND month = '{last:%m}' AND day = '{last:%d}'"
            for table in (merged, unmerged):
                table.refresh()
                snapshot = table.current_snapshot()
                assert snapshot is not None  # noqa: S101 - just appended
                label = table.name()[-1]
                row = {
                    "table": label,
                    "commits": commits,
                    "manifests": len(snapshot.manifests(table.io)),
                    "count_all_s": _timed(query, f"SELECT count(*) FROM {label}"),
                    "one_day_s": _timed(query, f"SELECT count(*) FROM {label} WHERE {one_day}"),
                }
                results.append(row)
                print(
                    f"{label:>22}: {commits:4d} commits, {row['manifests']:4d} manifests,"
                    f" count(*) {row['count_all_s']:.2f} s, one day {row['one_day_s']:.2f} s",
                    flush=True,
                )
    finally:
        stop_server(pid)

    def at(table: str, commits: int) -> dict[str, Any]:
        return next(r for r in results if r["table"] == table and r["commits"] == commits)

    first, last = args.checkpoints[0], args.checkpoints[-1]
    figures = [
        Figure(
            f"one-day query after {last} commits vs after {first} (manifests merged)",
            at("daily_demand", last)["one_day_s"],
            "s",
            baseline=at("daily_demand", first)["one_day_s"],
        ),
        Figure(
            f"one-day query after {last} commits, manifests merged vs not",
            at("daily_demand", last)["one_day_s"],
            "s",
            baseline=at("daily_demand_unmerged", last)["one_day_s"],
        ),
        Figure(
            f"manifests after {last} commits, merged vs not",
            at("daily_demand", last)["manifests"],
            "manifests",
            baseline=at("daily_demand_unmerged", last)["manifests"],
        ),
    ]
    write_json(args.json, "query_planning", figures, quick=args.quick, details={"runs": results})


if __name__ == "__main__":
    main()
