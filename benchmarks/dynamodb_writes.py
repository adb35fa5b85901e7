"""Parallel BatchWriteItem (the forecaster's writer) vs a sequential put_item loop.

Both write the same forecast items to the Forecasts table of a freshly provisioned stack on
a local emulator (moto server on 127.0.0.1) and the script prints items per second and the
ratio (goal >= 10x).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from boto3.dynamodb.types import TypeSerializer

from pipeline.forecasting.dynamo import BatchWriter, ForecastRow, forecast_item
from pipeline.local.emulator import start_server, stop_server
from pipeline.local.stack import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    now = datetime.now(UTC)
    rows = [
        ForecastRow(
            f"SKU-{i // 28}", "STORE-1", date(2024, 1, 1) + timedelta(days=i % 28), 1.0, 0.0, 2.0
        )
        for i in range(args.items)
    ]
    items = [forecast_item(r, now=now) for r in rows]
    pid, url = start_server()
    try:
        stack = LocalStack.create(url, stack_name=f"b{uuid.uuid4().hex[:8]}")
        table = stack.ref("ForecastTable")
        client = stack.session().client("dynamodb")
        serializer = TypeSerializer()

        started = time.perf_counter()
        for item in items:
            client.put_item(
                TableName=table, Item={k: serializer.serialize(v) for k, v in item.items()}
            )
        sequential = time.perf_counter() - started

        writer = BatchWriter(table, session=stack.session(), workers=args.workers)
        started = time.perf_counter()
        written = writer.write(items)
        parallel = time.perf_counter() - started
    finally:
        stop_server(pid)
    print(
        json.dumps(
            {
                "items": args.items,
                "workers": args.workers,
                "sequential_put_item_seconds": round(sequential, 2),
                "parallel_batch_write_seconds": round(parallel, 2),
                "sequential_items_per_s": round(args.items / sequential),
                "parallel_items_per_s": round(written / parallel),
                "ratio": round(sequential / parallel, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
