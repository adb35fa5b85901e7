"""Bytes a compaction run writes to the curated zone when its day already holds many rows.

The Iceberg issue's acceptance: a small batch of new events added to a day that already
holds 60 times as many rows writes at most 3x the curated bytes that the same batch writes
into an empty day (the one-object-per-partition layout rewrote the whole day: 61.8x).

Against the emulator (moto on 127.0.0.1): a lake's day D is filled with ``--base-events``
sales events (compacted from raw objects of 10,000 events), then the same ``--objects``
raw objects of ``--events-per-object`` new events of day D go to that lake and to a new
lake. Bytes written = the sizes of the curated objects each run created or replaced (data
files, Iceberg metadata, the manifest), from a listing before and after it: a PUT from
PyIceberg's pyarrow S3 client is counted like one from boto3. Then ``--growing-runs``
further batches on the full day show the bytes per run against the new raw bytes staying
flat as the day grows.

Usage: .venv/bin/python benchmarks/curated_growing_day.py [--quick] [--json P]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import Figure, add_arguments, write_json

DAY = datetime(2026, 3, 2, tzinfo=UTC)
SHARD = "shardId-000000000000"


def _objects(s3: Any, bucket: str) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    args: dict[str, Any] = {"Bucket": bucket}
    while True:
        page = s3.list_objects_v2(**args)
        out.update({o["Key"]: (o["ETag"], int(o["Size"])) for o in page.get("Contents", [])})
        if not page.get("IsTruncated"):
            return out
        args["ContinuationToken"] = page["NextContinuationToken"]


def _written(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]) -> int:
    return sum(size for key, (etag, size) in after.items() if before.get(key, ("", 0))[0] != etag)


def _put_batch(s3: Any, raw: str, *, first_seq: int, objects: int, events: int, tag: str) -> int:
    """``objects`` raw objects of ``events`` sales events of DAY; their raw bytes."""
    rng = random.Random(f"{tag}-{first_seq}")
    total = 0
    arrival = DAY + timedelta(hours=20)
    for n in range(objects):
        seq = first_seq + n
        lines = []
        for i in range(events):
            lines.append(
                json.dumps(
                    {
                        "event_id": f"{tag}-{seq}-{i}",
                        "event_type": "sale",
                        "sku_id": f"SKU-{rng.randint(1, 200):04d}",
                        "location_id": f"STORE-{rng.randint(1, 20):03d}",
                        "quantity": rng.randint(1, 6),
                        "unit_price": round(rng.uniform(0.5, 20), 2),
                        "event_time": (DAY + timedelta(seconds=rng.randint(0, 86_399))).isoformat(),
                    }
                )
            )
        body = ("\n".join(lines) + "\n").encode()
        key = f"sales/{arrival:%Y/%m/%d}/{SHARD}-{seq:020d}-{seq:020d}.json"
        s3.put_object(Bucket=raw, Key=key, Body=body)
        total += len(body)
    return total


class Lake:
    def __init__(self, session: Any, name: str) -> None:
        tag = f"{name}-{uuid.uuid4().hex[:6]}"
        self.session, self.s3 = session, session.client("s3")
        self.raw, self.curated, self.database = (
            f"{tag}-raw",
            f"{tag}-cur",
            f"db_{tag}".replace("-", "_"),
        )
        self.s3.create_bucket(Bucket=self.raw)
        self.s3.create_bucket(Bucket=self.curated)
        session.client("glue").create_database(DatabaseInput={"Name": self.database})
        self.seq = 1

    def add(self, objects: int, events: int, tag: str) -> int:
        raw = _put_batch(self.s3, self.raw, first_seq=self.seq, objects=objects, events=events,
                         tag=tag)  # fmt: skip
        self.seq += objects
        return raw

    def compact(self) -> dict[str, Any]:
        from pipeline.compaction import run_compaction

        before = _objects(self.s3, self.curated)
        started = time.perf_counter()
        report = run_compaction(raw_bucket=self.raw, curated_bucket=self.curated,
                                database=self.database, session=self.session)  # fmt: skip
        elapsed = time.perf_counter() - started
        written = _written(before, _objects(self.s3, self.curated))
        return {"elapsed_s": elapsed, "bytes_written": written, **report.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-events", type=int, default=600_000)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--events-per-object", type=int, default=500)
    parser.add_argument("--growing-runs", type=int, default=5)
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.base_events, args.growing_runs = 120_000, 2
        args.events_per_object = args.base_events // 60 // args.objects

    from pipeline.local.emulator import aws_session, local_environment, start_server, stop_server

    pid, url = start_server()
    os.environ.update(local_environment(url))
    try:
        session = aws_session(url)
        full, empty = Lake(session, "full"), Lake(session, "empty")
        started = time.perf_counter()
        full.add(args.base_events // 10_000, 10_000, "base")
        base = full.compact()
        print(f"day filled: {base['rows_written']:,} rows in {time.perf_counter() - started:.0f} s")
        batch = {"objects": args.objects, "events": args.events_per_object}
        raw_bytes = full.add(**batch, tag="new")
        empty.add(**batch, tag="new")
        on_full, on_empty = full.compact(), empty.compact()
        growing = []
        for r in range(args.growing_runs):
            new_raw = full.add(**batch, tag=f"grow{r}")
            run = full.compact()
            run["raw_bytes"] = new_raw
            growing.append(run)
    finally:
        stop_server(pid)
    ratio = on_full["bytes_written"] / on_empty["bytes_written"]
    print(
        f"{args.objects} objects ({args.objects * args.events_per_object:,} events, "
        f"{raw_bytes:,} raw bytes) into a day of {base['rows_written']:,} rows: "
        f"{on_full['bytes_written']:,} curated bytes written; into an empty day: "
        f"{on_empty['bytes_written']:,}; ratio {ratio:.2f}"
    )
    for r, run in enumerate(growing, start=1):
        print(
            f"growing run {r}: {run['bytes_written']:,} bytes written for {run['raw_bytes']:,}"
            f" raw bytes ({run['bytes_written'] / run['raw_bytes']:.3f}), {run['elapsed_s']:.2f} s"
        )
    figures = [
        Figure(
            f"curated bytes written adding {args.objects * args.events_per_object:,} events to a"
            f" day of {base['rows_written']:,} rows, vs to an empty day",
            on_full["bytes_written"],
            "bytes",
            baseline=on_empty["bytes_written"],
            goal="<= 3",
        ),
        Figure(
            "bytes written per raw byte, last growing run vs first",
            growing[-1]["bytes_written"] / growing[-1]["raw_bytes"],
            "",
            baseline=growing[0]["bytes_written"] / growing[0]["raw_bytes"],
        ),
    ]
    write_json(
        args.json,
        "curated_growing_day",
        figures,
        quick=args.quick,
        details={"base": base, "on_full": on_full, "on_empty": on_empty, "growing": growing},
    )


if __name__ == "__main__":
    main()
