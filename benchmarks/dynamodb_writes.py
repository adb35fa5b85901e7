"""Parallel BatchWriteItem (the forecaster's writer) vs a sequential put_item loop.

Both write the same forecast items to the Forecasts table of a freshly provisioned stack on
a local emulator (moto server on 127.0.0.1). Each round times the sequential loop and then
the writer; the script prints items per second of every round and the median ratio (goal
>= 10x). Both sides build their client before the clock starts; the loop sends items that
are already in the low-level format, the writer starts from the Python items (as
``write_forecasts`` does), so its own serialisation is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from pipeline.forecasting.dynamo import WORKERS, BatchWriter, ForecastRow, forecast_item
from pipeline.local.emulator import start_server, stop_server
from pipeline.local.stack import LocalStack


def _sequential(client: Any, table: str, items: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for item in items:
        client.put_item(TableName=table, Item=item)
    return time.perf_counter() - started


def _parallel(writer: BatchWriter, items: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    written = writer.write(items)
    seconds = time.perf_counter() - started
    if written != len(items):
        raise SystemExit(f"writer wrote {written} of {len(items)} items")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sweep", default="", help="also time the writer at these worker counts, e.g. 1,2,4,8"
    )
    args = parser.parse_args()

    now = datetime.now(UTC)
    rows = [
        ForecastRow(
            f"SKU-{i // 28}", "STORE-1", date(2024, 1, 1) + timedelta(days=i % 28), 1.0, 0.0, 2.0
        )
        for i in range(args.items)
    ]
    items = [forecast_item(r, now=now, run_id="benchmark") for r in rows]
    serializer = TypeSerializer()
    low_level = [{k: serializer.serialize(v) for k, v in item.items()} for item in items]
    rounds: list[dict[str, float]] = []
    sweep: dict[str, float] = {}
    pid, url = start_server()
    try:
        stack = LocalStack.create(url, stack_name=f"b{uuid.uuid4().hex[:8]}")
        table = stack.ref("ForecastTable")
        client = stack.session().client("dynamodb")
        writer = BatchWriter(table, session=stack.session(), workers=args.workers)
        _ = writer.client
        for _round in range(args.rounds):
            sequential = _sequential(client, table, low_level)
            parallel = _parallel(writer, items)
            rounds.append(
                {
                    "sequential_items_per_s": round(args.items / sequential),
                    "parallel_items_per_s": round(args.items / parallel),
                    "ratio": round(sequential / parallel, 1),
                }
            )
        for workers in [int(w) for w in args.sweep.split(",") if w]:
            other = BatchWriter(table, session=stack.session(), workers=workers)
            _ = other.client
            sweep[str(workers)] = round(args.items / _parallel(other, items))
    finally:
        stop_server(pid)
    figures: dict[str, Any] = {
        "items": args.items,
        "workers": args.workers,
        "rounds": rounds,
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "ratio_min": min(r["ratio"] for r in rounds),
    }
    if sweep:
        figures["parallel_items_per_s_by_workers"] = sweep
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
