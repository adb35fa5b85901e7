"""Producer benchmark: KPL aggregation vs plain records on 200-byte events, same run.

Starts its own emulator on 127.0.0.1, creates a one-shard stream, and puts the same events
twice. Prints Kinesis records per event (goal <= 1/5 with aggregation, so one shard's
1,000 records/s carry >= 5,000 events/s) and events/s for each mode.

    .venv/bin/python benchmarks/producer.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from _common import Figure, add_arguments, write_json

from pipeline.local.emulator import aws_session, start_server, stop_server
from pipeline.produce import Producer
from pipeline.synth import SynthConfig, live_events

EVENT_BYTES = 200
SHARD_RECORDS_PER_S = 1000
SHARD_BYTES_PER_S = 1024 * 1024


def shard_capacity(records_per_event: float, event_bytes: float) -> float:
    """Events/s one shard takes: the tighter of its 1,000 records/s and 1 MiB/s limits."""
    return min(SHARD_RECORDS_PER_S / records_per_event, SHARD_BYTES_PER_S / event_bytes)


def padded_events(n: int) -> list[dict[str, Any]]:
    """Synthetic events padded (with an extra field, which the contract keeps) to 200 bytes."""
    events = live_events(SynthConfig(seed=5), datetime.now(UTC), n, spacing_s=0.001)
    for event in events:
        size = len(json.dumps(event, separators=(",", ":")))
        event["note"] = "x" * max(0, EVENT_BYTES - size - len(',"note":""'))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 5000)
    events = padded_events(args.events)
    mean = sum(len(json.dumps(e, separators=(",", ":"))) for e in events) / len(events)
    pid, url = start_server()
    try:
        kinesis = aws_session(url).client("kinesis")
        print(f"{len(events)} events, mean {mean:.0f} bytes, one shard, emulator {url}")
        rows = {}
        for aggregate in (False, True):
            stream = f"bench-{uuid.uuid4().hex[:8]}"
            kinesis.create_stream(StreamName=stream, ShardCount=1)
            kinesis.get_waiter("stream_exists").wait(StreamName=stream)
            report = Producer(kinesis, stream, aggregate=aggregate).put(events)
            rows[aggregate] = report
            mode = "aggregated" if aggregate else "plain     "
            print(
                f"{mode}: {report.kinesis_records:6d} Kinesis records, "
                f"{report.records_per_event:.4f} records/event "
                f"(1/{1 / report.records_per_event:.0f}), "
                f"{report.events_per_s:8.0f} events/s, {report.records_per_s:7.0f} records/s, "
                f"{report.calls} PutRecords calls; one shard's limits carry "
                f"{shard_capacity(report.records_per_event, mean):.0f} events/s"
            )
        ratio = rows[True].events_per_s / rows[False].events_per_s
        goal = "met" if rows[True].records_per_event <= 0.2 else "MISSED"
        print(f"aggregation: {ratio:.1f}x the events/s of plain records; goal <= 1/5 {goal}")
        write_json(
            args.json,
            "producer",
            [
                Figure(
                    "aggregated Kinesis records per event",
                    rows[True].records_per_event,
                    "records/event",
                    goal="<= 0.2",
                ),
                Figure(
                    "aggregated producer throughput",
                    rows[True].events_per_s,
                    "events/s",
                    baseline=rows[False].events_per_s,
                    note="baseline: plain records, same events, same run",
                ),
                Figure(
                    "one shard's capacity with aggregation",
                    shard_capacity(rows[True].records_per_event, mean),
                    "events/s",
                    goal=">= 5000",
                ),
            ],
            quick=args.quick,
            details={"events": len(events), "mean_event_bytes": round(mean, 1)},
        )
    finally:
        stop_server(pid)


if __name__ == "__main__":
    main()
