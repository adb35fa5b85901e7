"""The compaction job against the emulator: idempotence, quarantine, late events, Glue run.

One stack is provisioned for the module; every test gets its own lake on it (fresh raw and
curated buckets and a Glue database with the template's tables), which is much cheaper.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pytest

from pipeline.compaction import run_compaction
from pipeline.compaction.job import LOCATIONS_QUARANTINE_KEY
from pipeline.compaction.state import MANIFEST_KEY
from pipeline.errors import TerminalError
from pipeline.lake import compaction_quarantine_key
from pipeline.lake.tables import (
    DAILY_DEMAND,
    ensure_table,
    iceberg_catalog,
    read_rows,
    with_partition_columns,
)
from pipeline.local.glue_runtime import run_glue_job
from pipeline.local.stack import LocalStack
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.compaction_lake import Lake, curated_rows, fresh_lake

if TYPE_CHECKING:
    from pathlib import Path

    import boto3

    from pipeline.compaction import CompactionReport

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
SHARD = "shardId-000000000000"


@pytest.fixture(scope="module")
def shared_stack(emulator_url: str) -> LocalStack:
    return LocalStack.create(emulator_url, stack_name=f"c{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def session(shared_stack: LocalStack) -> boto3.session.Session:
    return shared_stack.session()


@pytest.fixture
def lake(shared_stack: LocalStack, session: boto3.session.Session) -> Lake:
    return fresh_lake(shared_stack, session)


@pytest.fixture
def s3(session: boto3.session.Session) -> Any:
    return session.client("s3")


def _compact(lake: Lake, session: boto3.session.Session) -> CompactionReport:
    return run_compaction(
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
    )


def _objects(s3: Any, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


#: What a run looks at even when it has nothing to do (the open window), not work done.
_LOOKED_AT = ("raw_keys_listed", "manifest_entries")


def test_given_compacted_raw_when_rerun_without_new_data_then_nothing_changes(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(
        s3,
        lake.raw,
        raw_key(T0, SHARD, 1, 2),
        [event("e1", T0), event("e2", T0 + timedelta(days=1), quantity=4)],
    )
    first = _compact(lake, session)
    before = _objects(s3, lake.curated)

    again = _compact(lake, session)

    assert (first.rows_written, first.partitions_written, first.raw_objects) == (2, 2, 1)
    work = {k: v for k, v in again.as_dict().items() if k not in _LOOKED_AT}
    assert work == dict.fromkeys(work, 0)
    # It listed the one raw key of the open window and found it in the manifest.
    assert (again.raw_keys_listed, again.manifest_entries) == (1, 1)
    assert _objects(s3, lake.curated) == before


def test_given_duplicates_across_objects_and_runs_when_compacted_then_each_event_once(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(
        s3, lake.raw, raw_key(T0, SHARD, 1, 3), [event("e1", T0), event("e2", T0), event("e1", T0)]
    )
    _compact(lake, session)
    put_raw(
        s3,
        lake.raw,
        raw_key(T0 + timedelta(hours=1), "shardId-000000000001", 1, 2),
        [event("e2", T0), event("e3", T0)],
    )

    report = _compact(lake, session)

    frame = curated_rows(session, lake.database, "sales")
    assert sorted(frame["event_id"]) == ["e1", "e2", "e3"]
    assert (report.duplicates_dropped, report.rows_written) == (1, 1)


def test_given_wrong_type_value_when_compacted_then_line_quarantined_with_reason(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    key = raw_key(T0, SHARD, 1, 3)
    bad = json.dumps({**event("bad", T0), "quantity": "three"})
    put_raw(
        s3, lake.raw, key, [event("ok1", T0, new_field={"nested": True}), bad, event("ok2", T0)]
    )

    report = _compact(lake, session)

    quarantined = s3.get_object(Bucket=lake.curated, Key=compaction_quarantine_key(key))
    body = quarantined["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()] == [
        {
            "source": f"s3://{lake.raw}/{key}",
            "line": 2,
            "reason": "wrong_type",
            "detail": "quantity: expected integer, got string",
            "record": bad,
        }
    ]
    assert (report.quarantined, report.rows_written) == (1, 2)


def test_given_late_event_when_compacted_then_its_day_and_carried_stock_are_recomputed(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(
        s3,
        lake.raw,
        raw_key(T0 + timedelta(days=2), SHARD, 1, 2),
        [
            event("s1", T0, stock=10, quantity=2),
            event("s2", T0 + timedelta(days=2), quantity=1),
        ],
    )
    _compact(lake, session)
    put_raw(
        s3,
        lake.raw,
        raw_key(T0 + timedelta(days=3), SHARD, 3, 3),
        [
            event(
                "c1",
                T0 + timedelta(days=1),
                event_type="stock_count",
                quantity=0,
                stock=0,
                price=None,
            ),
        ],
    )

    report = _compact(lake, session)

    frame = curated_rows(session, lake.database, "daily_demand")
    rows = sorted(frame.to_dict("records"), key=lambda r: r["date"])
    prices = [r.pop("avg_unit_price") for r in rows]
    base = {"sku_id": "SKU-1", "location_id": "LOC-1", "units_returned": 0}
    assert prices[0] == 2.5 and pd.isna(prices[1]) and prices[2] == 2.5  # no sale on day 2
    assert rows == [
        {
            **base,
            "date": date(2024, 3, 1),
            "units_sold": 2,
            "end_of_day_stock": 10,
            "stockout": False,
        },
        {
            **base,
            "date": date(2024, 3, 2),
            "units_sold": 0,
            "end_of_day_stock": 0,
            "stockout": True,
        },
        {
            **base,
            "date": date(2024, 3, 3),
            "units_sold": 1,
            "end_of_day_stock": 0,
            "stockout": True,
        },
    ]
    assert report.demand_days_written == 2
    assert _partition_dirs(s3, lake.curated, "sales") == [
        f"sales/data/year=2024/month=03/day={d}/" for d in ("01", "02", "03")
    ]


def _partition_dirs(s3: Any, bucket: str, table: str) -> list[str]:
    """The partition folders of a table's data files (``year=YYYY/month=MM/day=DD/``)."""
    keys = _objects(s3, bucket)
    return sorted({k.rsplit("/", 1)[0] + "/" for k in keys if k.startswith(f"{table}/data/")})


def _demand_rows(lake: Lake, session: boto3.session.Session) -> list[dict[str, Any]]:
    frame = curated_rows(session, lake.database, "daily_demand")
    rows = frame.to_dict("records")
    return sorted(rows, key=lambda r: (r["location_id"], r["date"]))


def test_given_a_store_at_utc_minus_8_when_compacted_then_sales_book_on_its_local_day(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    # GIVEN a locations table: WEST is in Los Angeles (UTC-8 in winter), EAST keeps UTC.
    s3.put_object(
        Bucket=lake.curated,
        Key="reference/locations/locations.csv",
        Body=b"location_id,time_zone,country,subdivision\nWEST,America/Los_Angeles,US,CA\n",
    )
    evening = datetime(2024, 3, 2, 1, 0, tzinfo=UTC)  # 17:00 on 1 March in Los Angeles
    put_raw(
        s3,
        lake.raw,
        raw_key(evening, SHARD, 1, 3),
        [
            event("w1", evening, location="WEST", quantity=2, price=3.0),
            event("w2", evening - timedelta(hours=6), location="WEST", quantity=1, price=6.0),
            event("e1", evening, location="EAST", quantity=1),
        ],
    )

    # WHEN compacted
    _compact(lake, session)

    # THEN WEST's evening sale is on 1 March (its day), EAST's on 2 March (UTC), and the
    # price is the day's units-weighted mean: (2 x 3.0 + 1 x 6.0) / 3. Rows stay dense
    # through the lake's last local day: WEST has 2 March without a sale (no price).
    got = [
        (r["location_id"], r["date"], r["units_sold"], None if pd.isna(p) else p)
        for r in _demand_rows(lake, session)
        for p in [r["avg_unit_price"]]
    ]
    assert got == [
        ("EAST", date(2024, 3, 2), 1, 2.5),
        ("WEST", date(2024, 3, 1), 3, 4.0),
        ("WEST", date(2024, 3, 2), 0, None),
    ]


def test_given_a_late_sale_in_the_next_utc_day_when_compacted_then_the_local_day_is_rebuilt(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    s3.put_object(
        Bucket=lake.curated,
        Key="reference/locations/locations.csv",
        Body=b"location_id,time_zone\nLOC-1,America/Los_Angeles\n",
    )
    noon = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)  # 12:00 on 1 March in Los Angeles
    put_raw(s3, lake.raw, raw_key(noon, SHARD, 1, 1), [event("a", noon, stock=9)])
    _compact(lake, session)
    # A sale at 23:00 local on 1 March: the UTC partition of 2 March, arriving later.
    late = datetime(2024, 3, 2, 7, 0, tzinfo=UTC)
    put_raw(s3, lake.raw, raw_key(late, SHARD, 2, 2), [event("b", late, quantity=3, stock=4)])

    _compact(lake, session)

    rows = _demand_rows(lake, session)
    assert [(r["date"], r["units_sold"], r["end_of_day_stock"]) for r in rows] == [
        (date(2024, 3, 1), 4, 4)
    ]


def test_given_an_unknown_time_zone_when_compacting_then_the_row_is_quarantined_and_the_run_goes_on(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    s3.put_object(
        Bucket=lake.curated,
        Key="reference/locations/locations.csv",
        Body=b"location_id,time_zone\nLOC-1,Mars/Olympus_Mons\nLOC-2,Asia/Tokyo\n",
    )
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("e1", T0)])

    report = _compact(lake, session)

    (entry,) = [
        json.loads(line)
        for line in s3.get_object(Bucket=lake.curated, Key=LOCATIONS_QUARANTINE_KEY)["Body"]
        .read()
        .splitlines()
    ]
    assert report.location_rows_skipped == 1
    assert entry["reason"] == "invalid_location_row"
    assert entry["detail"] == (
        f"s3://{lake.curated}/reference/locations/locations.csv row 1 (LOC-1): "
        "unknown time zone 'Mars/Olympus_Mons': expected an IANA name such as 'Europe/Berlin' "
        "or 'America/Los_Angeles'"
    )
    # LOC-1 took the default zone (UTC): its sale books on its UTC day.
    assert [r["date"] for r in _demand_rows(lake, session)] == [T0.date()]


def test_given_the_day_before_in_daily_demand_when_compacted_then_its_stock_carries_in(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    # GIVEN the table already holds the day before the first compacted one (no price)
    previous = pa.table(
        {
            "sku_id": ["SKU-1"],
            "location_id": ["LOC-1"],
            "date": pa.array([date(2024, 2, 29)], pa.date32()),
            "units_sold": pa.array([1], pa.int64()),
            "units_returned": pa.array([0], pa.int64()),
            "end_of_day_stock": pa.array([7], pa.int64()),
            "stockout": [False],
            "avg_unit_price": pa.array([None], pa.float64()),
        }
    )
    table = ensure_table(iceberg_catalog(session), lake.database, lake.curated, DAILY_DEMAND)
    table.append(with_partition_columns(previous, DAILY_DEMAND))
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("e1", T0)])

    # WHEN compacted and read as the forecaster reads the table
    _compact(lake, session)
    frame = curated_rows(session, lake.database, "daily_demand")

    # THEN the old day is kept as it was and the new day carries its stock in
    rows = sorted(frame.to_dict("records"), key=lambda r: r["date"])
    assert [(r["date"], r["end_of_day_stock"]) for r in rows] == [
        (date(2024, 2, 29), 7),
        (T0.date(), 7),
    ]
    assert pd.isna(rows[0]["avg_unit_price"]) and rows[1]["avg_unit_price"] == 2.5


def test_given_daily_demand_when_read_by_forecaster_then_schema_matches_contract(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("e1", T0)])
    _compact(lake, session)

    rows = read_rows(iceberg_catalog(session), lake.database, DAILY_DEMAND)

    assert rows.schema == DAILY_DEMAND.schema
    assert rows.num_rows == 1


def test_given_stack_when_job_runs_as_glue_process_then_progress_and_report_arrive(
    shared_stack: LocalStack, s3: Any
) -> None:
    put_raw(
        s3,
        shared_stack.ref("RawBucket"),
        raw_key(T0, SHARD, 1, 2),
        [event("e1", T0), event("e2", T0)],
    )
    steps: list[tuple[str, int, int]] = []

    report = run_glue_job(shared_stack, "CompactSalesJob", progress=lambda *p: steps.append(p))

    assert (report["rows_written"], report["raw_objects"]) == (2, 1)
    assert ("read raw", 1, 1) in steps
    assert steps[-1] == ("commit", 1, 1)
    curated = _objects(s3, shared_stack.ref("CuratedBucket"))
    assert MANIFEST_KEY in curated
    assert any(k.startswith("sales/data/year=2024/month=03/day=01/") for k in curated)


def test_given_missing_raw_bucket_when_compacting_then_terminal_error_names_it(
    lake: Lake, session: boto3.session.Session
) -> None:
    with pytest.raises(TerminalError, match=r"^list s3://no-such-bucket/sales/: NoSuchBucket"):
        run_compaction(
            raw_bucket="no-such-bucket",
            curated_bucket=lake.curated,
            database=lake.database,
            session=session,
        )


@pytest.mark.parametrize("single_put_bytes", [0, 1 << 30], ids=["upload_file", "put_object"])
def test_given_a_file_when_uploaded_either_way_then_it_round_trips_and_a_missing_key_is_false(
    lake: Lake,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    single_put_bytes: int,
) -> None:
    from pipeline.compaction import store

    monkeypatch.setattr(store, "_SINGLE_PUT_BYTES", single_put_bytes)
    source, back = tmp_path / "part.parquet", tmp_path / "back.parquet"
    source.write_bytes(bytes(range(256)) * 4096)
    lake_store = store.LakeStore(s3)

    lake_store.upload(source, lake.curated, "sales/year=2024/month=03/day=01/part.parquet")

    assert lake_store.download(lake.curated, "sales/year=2024/month=03/day=01/part.parquet", back)
    assert back.read_bytes() == source.read_bytes()
    assert not lake_store.download(lake.curated, "sales/nothing.parquet", tmp_path / "none")


def test_given_a_three_day_outage_when_bounded_runs_drain_it_then_every_event_lands_once(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    # Three days of raw objects waited (the job was down): 2 shards x 24 hours x 3 days,
    # two events each, one of them repeated by a retried batch on the other shard.
    expected: set[str] = set()
    for hour in range(72):
        arrival = T0 + timedelta(hours=hour)
        for s, shard in enumerate(("shardId-000000000000", "shardId-000000000001")):
            ids = [f"h{hour}-s{s}-a", f"h{hour}-s{s}-b"]
            events = [event(i, arrival - timedelta(minutes=5)) for i in ids]
            if s == 1 and hour:
                events.append(event(f"h{hour - 1}-s0-a", arrival - timedelta(hours=1)))
            put_raw(s3, lake.raw, raw_key(arrival, shard, hour * 10, hour * 10 + 9), events)
            expected.update(ids)

    reports = []
    while (report := _compact_bounded(lake, session, max_objects=50)).raw_objects:
        reports.append(report)

    frame = curated_rows(session, lake.database, "sales")
    assert [r.raw_objects for r in reports] == [50, 50, 44]
    assert [r.raw_objects_waiting for r in reports] == [94, 44, 0]
    assert len(frame) == len(expected) == 288
    assert set(frame["event_id"]) == expected
    assert sum(r.duplicates_dropped for r in reports) == 71


def test_given_sixty_days_compacted_when_a_new_hour_arrives_then_the_run_reads_the_open_window(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    for day in range(60):
        arrival = T0 + timedelta(days=day)
        put_raw(s3, lake.raw, raw_key(arrival, SHARD, day, day), [event(f"d{day}", arrival)])
    _compact(lake, session)
    put_raw(
        s3,
        lake.raw,
        raw_key(T0 + timedelta(days=60), SHARD, 60, 60),
        [event("d60", T0 + timedelta(days=60))],
    )

    report = _compact(lake, session)
    manifest = json.loads(s3.get_object(Bucket=lake.curated, Key=MANIFEST_KEY)["Body"].read())

    assert report.raw_objects == 1
    # The keys after the watermark (day 51): days 52..59 and the new day 60. Day 52 closes.
    assert report.raw_keys_listed == 9
    assert report.manifest_entries == len(manifest["days"]) == 8
    assert manifest["watermark"] == (T0 + timedelta(days=52)).date().isoformat()


def _compact_bounded(
    lake: Lake, session: boto3.session.Session, *, max_objects: int
) -> CompactionReport:
    return run_compaction(
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
        max_objects=max_objects,
    )


def test_given_a_reset_clock_and_a_clock_a_year_ahead_when_compacted_then_both_wait_for_backfill(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    key = raw_key(T0, SHARD, 1, 4)
    reset, ahead = datetime(2000, 1, 2, 10, tzinfo=UTC), T0 + timedelta(days=365)
    put_raw(
        s3,
        lake.raw,
        key,
        [event("n1", T0), event("old", reset), event("n2", T0), event("ahead", ahead)],
    )

    report = _compact(lake, session)

    quarantined = [
        json.loads(line)
        for line in s3.get_object(Bucket=lake.curated, Key=compaction_quarantine_key(key))["Body"]
        .read()
        .splitlines()
    ]
    assert sorted((q["reason"], json.loads(q["record"])["event_id"]) for q in quarantined) == [
        ("future", "ahead"),
        ("too_late", "old"),
    ]
    # The run did its normal work: one sales day, its demand day, nothing from 2000.
    assert (report.held_aside, report.rows_written, report.partitions_written) == (2, 2, 1)
    assert report.demand_days_written == 1
    assert _sales_ids(lake, session) == ["n1", "n2"]

    backfilled = run_compaction(
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
        backfill=[compaction_quarantine_key(key)],
    )
    again = run_compaction(
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
        backfill=[compaction_quarantine_key(key)],
    )

    assert (backfilled.rows_written, backfilled.partitions_written) == (2, 2)
    # Only the days around the events: 2000-01-02 and T0 + 365, not the 24 years between.
    assert backfilled.demand_days_written == 2
    assert (again.rows_written, again.duplicates_dropped) == (0, 2)
    assert _sales_ids(lake, session) == ["ahead", "n1", "n2", "old"]
    assert _partition_dirs(s3, lake.curated, "sales")[0] == "sales/data/year=2000/month=01/day=02/"
    assert _compact(lake, session).raw_objects == 0


def _sales_ids(lake: Lake, session: boto3.session.Session) -> list[str]:
    frame = curated_rows(session, lake.database, "sales")
    return sorted(frame["event_id"])


def test_given_an_archived_raw_object_among_good_ones_then_it_is_quarantined_and_the_run_goes_on(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("g1", T0)])
    archived = raw_key(T0, SHARD, 2, 2)
    body = (json.dumps(event("lost", T0)) + "\n").encode()
    s3.put_object(Bucket=lake.raw, Key=archived, Body=body, StorageClass="GLACIER")
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 3, 3), [event("g3", T0)])

    report = _compact(lake, session)

    entry = json.loads(
        s3.get_object(Bucket=lake.curated, Key=compaction_quarantine_key(archived))["Body"].read()
    )
    assert (report.raw_objects, report.unreadable_objects, report.quarantined) == (3, 1, 1)
    assert (entry["reason"], entry["source"]) == (
        "unreadable_object",
        f"s3://{lake.raw}/{archived}",
    )
    assert entry["detail"].startswith("InvalidObjectState: ")
    assert _sales_ids(lake, session) == ["g1", "g3"]
