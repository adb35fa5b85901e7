"""The compaction job against the emulator: idempotence, quarantine, late events, Glue run.

One stack is provisioned for the module; every test gets its own lake on it (fresh raw and
curated buckets and a Glue database with the template's tables), which is much cheaper.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import awswrangler as wr
import pytest

from pipeline.compaction import curated_key, run_compaction
from pipeline.compaction.state import MANIFEST_KEY
from pipeline.errors import TerminalError
from pipeline.lake import compaction_quarantine_key
from pipeline.local.glue_runtime import run_glue_job
from pipeline.local.stack import LocalStack
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.compaction_lake import Lake, fresh_lake

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
    assert again.as_dict() == dict.fromkeys(again.as_dict(), 0)
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

    frame = wr.s3.read_parquet(f"s3://{lake.curated}/sales/", dataset=True, boto3_session=session)
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
        raw_key(T0, SHARD, 1, 2),
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

    frame = wr.s3.read_parquet(
        f"s3://{lake.curated}/daily_demand/", dataset=True, boto3_session=session
    )
    rows = sorted(
        frame.drop(columns=["year", "month", "day"]).to_dict("records"), key=lambda r: r["date"]
    )
    base = {"sku_id": "SKU-1", "location_id": "LOC-1", "units_returned": 0}
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
    partitions = wr.catalog.get_partitions(lake.database, "sales", boto3_session=session)
    assert sorted(partitions.values()) == [["2024", "03", d] for d in ("01", "02", "03")]


def test_given_daily_demand_when_read_by_forecaster_then_schema_matches_contract(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("e1", T0)])
    _compact(lake, session)

    frame = wr.s3.read_parquet(
        f"s3://{lake.curated}/daily_demand/", dataset=True, boto3_session=session
    )

    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "sku_id": "string",
        "location_id": "string",
        "date": "object",
        "units_sold": "Int64",
        "units_returned": "Int64",
        "end_of_day_stock": "Int64",
        "stockout": "boolean",
        "year": "category",
        "month": "category",
        "day": "category",
    }


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
    assert {MANIFEST_KEY, curated_key(T0.date())} <= set(curated)


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
