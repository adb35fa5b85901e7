"""A reset till clock and a clock a year ahead, through the real ingest handler and then
compaction, beside normal traffic (the year-of-operation issue's acceptance)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.compaction import run_compaction
from pipeline.ingest import from_lambda_event
from pipeline.lake import compaction_quarantine_key, raw_key
from tests.support.compaction_lake import curated_rows

if TYPE_CHECKING:
    from types import ModuleType

    from pipeline.local.stack import LocalStack

SAMPLE = Path(__file__).parents[3] / "infra" / "events" / "kinesis_sales.json"


def _event(when: datetime, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The sample Kinesis event with these sales events as its records, arriving ``when``."""
    sample = json.loads(SAMPLE.read_text())
    template = sample["Records"][0]
    records = []
    for n, body in enumerate(events, start=1):
        record = copy.deepcopy(template)
        record["kinesis"]["data"] = base64.b64encode(json.dumps(body).encode()).decode()
        record["kinesis"]["sequenceNumber"] = f"{49540000000000000000000000000000000 + n:056d}"
        record["kinesis"]["approximateArrivalTimestamp"] = when.timestamp()
        record["eventID"] = f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"
        records.append(record)
    return {"Records": records}


def _sale(event_id: str, when: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "sale",
        "sku_id": "SKU-1",
        "location_id": "STORE-1",
        "quantity": 1,
        "unit_price": 2.5,
        "event_time": when.isoformat(),
    }


def test_given_a_reset_clock_and_a_clock_ahead_through_ingest_then_compaction_commits_the_rest(
    stack: LocalStack, ingest_app: ModuleType
) -> None:
    arrival = datetime.now(UTC).replace(microsecond=0)
    reset, ahead = datetime(2000, 1, 2, 10, tzinfo=UTC), arrival + timedelta(days=365)
    normal = [_sale(f"n{i}", arrival - timedelta(minutes=i)) for i in range(5)]
    event = _event(arrival, [*normal[:2], _sale("old", reset), _sale("ahead", ahead), *normal[2:]])
    s3 = stack.session().client("s3")
    raw, curated = stack.ref("RawBucket"), stack.ref("CuratedBucket")

    assert ingest_app.lambda_handler(event, None) == {"batchItemFailures": []}
    compacted = run_compaction(
        raw_bucket=raw,
        curated_bucket=curated,
        database=stack.ref("LakeDatabase"),
        session=stack.session(),
    )

    # Ingest refuses the year-ahead clock itself, with its reason; the reset one passes the
    # contract (after 2000-01-01) and compaction holds it aside as too late.
    ingest_quarantine = [
        json.loads(line)
        for o in s3.list_objects_v2(Bucket=raw, Prefix="quarantine/")["Contents"]
        for line in s3.get_object(Bucket=raw, Key=o["Key"])["Body"].read().splitlines()
    ]
    assert [q["reason"] for q in ingest_quarantine] == ["event_time_out_of_range"]
    records = from_lambda_event(event)
    key = raw_key(
        records[0].shard_id,
        records[0].sequence_number,
        records[-1].sequence_number,
        records[0].approximate_arrival,
    )
    held = [
        json.loads(line)
        for line in s3.get_object(Bucket=curated, Key=compaction_quarantine_key(key))["Body"]
        .read()
        .splitlines()
    ]
    assert [(h["reason"], json.loads(h["record"])["event_id"]) for h in held] == [
        ("too_late", "old")
    ]
    # The run did the normal day's work only (two days at most around midnight), not 26 years.
    assert compacted.held_aside == 1
    assert compacted.rows_written == 5
    assert compacted.demand_days_written <= 2

    backfilled = run_compaction(
        raw_bucket=raw,
        curated_bucket=curated,
        database=stack.ref("LakeDatabase"),
        session=stack.session(),
        backfill=[compaction_quarantine_key(key)],
    )

    frame = curated_rows(stack.session(), stack.ref("LakeDatabase"), "sales")
    assert (backfilled.rows_written, backfilled.demand_days_written) == (1, 1)
    assert sorted(frame["event_id"]) == sorted(["old", *(e["event_id"] for e in normal)])
