"""The compaction job finding new raw objects from the raw bucket's event queue, through the
emulator (moto delivers the bucket's S3 notifications to SQS): found once put, deleted only
after the commit, bounded, overwritten objects read again, odd messages ignored and counted.

One stack is provisioned for the module; every test gets its own lake with its own queue,
which the lake's raw bucket notifies as the template's raw bucket does.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.compaction import run_compaction
from pipeline.compaction.queue import RawQueue
from pipeline.compaction.state import MANIFEST_KEY
from pipeline.local.stack import LocalStack
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.compaction_lake import Lake, curated_rows, fresh_lake

if TYPE_CHECKING:
    import boto3

    from pipeline.compaction import CompactionReport

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
SHARD = "shardId-000000000000"


class Crash(Exception):
    """The run dies at the commit."""


@pytest.fixture(scope="module")
def shared_stack(emulator_url: str) -> LocalStack:
    return LocalStack.create(emulator_url, stack_name=f"q{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def session(shared_stack: LocalStack) -> boto3.session.Session:
    return shared_stack.session()


@pytest.fixture
def lake(shared_stack: LocalStack, session: boto3.session.Session) -> Lake:
    return fresh_lake(shared_stack, session, queue=True)


@pytest.fixture
def s3(session: boto3.session.Session) -> Any:
    return session.client("s3")


@pytest.fixture
def sqs(session: boto3.session.Session) -> Any:
    return session.client("sqs")


def _compact(lake: Lake, session: boto3.session.Session, **kwargs: Any) -> CompactionReport:
    return run_compaction(
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
        raw_queue_url=lake.queue,
        **kwargs,
    )


def _queued(sqs: Any, lake: Lake) -> tuple[int, int]:
    """(visible, in flight) messages of the lake's queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=lake.queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _sales_ids(lake: Lake, session: boto3.session.Session) -> list[str]:
    return sorted(curated_rows(session, lake.database, "sales")["event_id"])


def _manifest(s3: Any, lake: Lake) -> bytes:
    body: bytes = s3.get_object(Bucket=lake.curated, Key=MANIFEST_KEY)["Body"].read()
    return body


def test_given_a_raw_object_put_when_compacted_then_it_is_found_through_the_queue(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 2), [event("e1", T0), event("e2", T0)])

    report = _compact(lake, session)
    again = _compact(lake, session)

    assert (report.raw_objects, report.rows_written, report.queue_messages) == (1, 2, 1)
    # Nothing listed; the manifest holds no object, only the last event date.
    assert (report.raw_keys_listed, report.manifest_entries) == (0, 0)
    manifest = json.loads(_manifest(s3, lake))
    assert (manifest["days"], manifest["max_event_date"]) == ({}, "2024-03-01")
    assert _queued(sqs, lake) == (0, 0)
    assert (again.raw_objects, again.queue_messages) == (0, 0)
    assert _sales_ids(lake, session) == ["e1", "e2"]


def test_given_a_crash_before_the_commit_when_rerun_then_the_messages_remain_and_land_once(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 2), [event("e1", T0), event("e2", T0)])
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 3, 4), [event("e3", T0), event("e2", T0)])

    def crash(step: str, done: int, total: int) -> None:
        if (step, done) == ("commit", 0):
            raise Crash

    with pytest.raises(Crash):
        _compact(lake, session, progress=crash)
    # Handed back at once (the tables were committed, the manifest was not).
    assert _queued(sqs, lake) == (2, 0)
    report = _compact(lake, session)

    assert (report.raw_objects, report.rows_written, report.duplicates_dropped) == (2, 0, 4)
    assert _sales_ids(lake, session) == ["e1", "e2", "e3"]
    assert _queued(sqs, lake) == (0, 0)


def test_given_a_killed_run_when_the_visibility_timeout_passes_then_the_next_run_compacts_once(
    shared_stack: LocalStack,
    session: boto3.session.Session,
    s3: Any,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lake = fresh_lake(shared_stack, session, queue=True, visibility_timeout=2)
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 2), [event("e1", T0), event("e2", T0)])

    def killed(step: str, done: int, total: int) -> None:
        if (step, done) == ("commit", 0):
            raise Crash

    # A killed process hands nothing back: its messages wait out the visibility timeout.
    with monkeypatch.context() as m:
        m.setattr(RawQueue, "release", lambda self, receipts: None)
        with pytest.raises(Crash):
            _compact(lake, session, progress=killed)
    during = _compact(lake, session)
    time.sleep(2.5)
    after = _compact(lake, session)

    assert (during.raw_objects, during.queue_messages) == (0, 0)
    assert (after.raw_objects, after.rows_written, after.duplicates_dropped) == (1, 0, 2)
    assert _sales_ids(lake, session) == ["e1", "e2"]
    assert _queued(sqs, lake) == (0, 0)


def test_given_a_backlog_when_runs_are_bounded_then_each_takes_at_most_n_and_leaves_the_rest(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    expected = []
    for n in range(25):
        arrival = T0 + timedelta(hours=n)
        put_raw(s3, lake.raw, raw_key(arrival, SHARD, n, n), [event(f"e{n:02d}", arrival)])
        expected.append(f"e{n:02d}")

    first = _compact(lake, session, max_objects=10)
    queued_after_first = _queued(sqs, lake)
    reports = [first]
    while (report := _compact(lake, session, max_objects=10)).raw_objects:
        reports.append(report)

    assert [r.raw_objects for r in reports] == [10, 10, 5]
    assert [r.raw_objects_waiting for r in reports] == [15, 5, 0]
    assert queued_after_first == (15, 0)
    assert _sales_ids(lake, session) == expected


def test_given_an_overwritten_raw_object_when_compacted_again_then_no_event_is_duplicated(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    key = raw_key(T0, SHARD, 1, 3)
    put_raw(s3, lake.raw, key, [event("e1", T0), event("e2", T0)])
    _compact(lake, session)
    # The retried batch overwrites the same key (a new ETag) with one more record.
    put_raw(s3, lake.raw, key, [event("e1", T0), event("e2", T0), event("e3", T0)])
    again = _compact(lake, session)
    # Two overwrites before one run: one object, read once, the latest event's.
    put_raw(s3, lake.raw, key, [event("e1", T0), event("e4", T0)])
    put_raw(s3, lake.raw, key, [event("e1", T0), event("e4", T0), event("e5", T0)])
    twice = _compact(lake, session)

    assert (again.raw_objects, again.rows_written, again.duplicates_dropped) == (1, 1, 2)
    assert (twice.queue_messages, twice.raw_objects, twice.rows_written) == (2, 1, 2)
    size = s3.head_object(Bucket=lake.raw, Key=key)["ContentLength"]
    assert twice.bytes_in == size
    assert _sales_ids(lake, session) == ["e1", "e2", "e3", "e4", "e5"]
    assert _queued(sqs, lake) == (0, 0)


def test_given_a_test_event_and_garbage_when_compacted_then_they_are_ignored_and_counted(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": lake.raw}
    other_bucket = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "someone-elses"},
                    "object": {"key": raw_key(T0, SHARD, 9, 9), "size": 1, "eTag": "x"},
                },
            }
        ]
    }
    for body in (json.dumps(test_event), "not json {", "[]", json.dumps(other_bucket)):
        sqs.send_message(QueueUrl=lake.queue, MessageBody=body)
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("e1", T0)])

    report = _compact(lake, session)

    assert (report.queue_messages, report.queue_messages_ignored) == (5, 4)
    assert (report.raw_objects, report.rows_written) == (1, 1)
    assert _queued(sqs, lake) == (0, 0)


def test_given_only_odd_messages_when_compacted_then_they_are_deleted_and_nothing_commits(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    sqs.send_message(QueueUrl=lake.queue, MessageBody="garbage")

    report = _compact(lake, session)

    assert (report.queue_messages, report.queue_messages_ignored, report.raw_objects) == (1, 1, 0)
    assert _queued(sqs, lake) == (0, 0)
    assert s3.list_objects_v2(Bucket=lake.curated).get("KeyCount", 0) == 0


def test_given_an_object_deleted_after_its_event_when_compacted_then_it_is_skipped(
    lake: Lake, session: boto3.session.Session, s3: Any, sqs: Any
) -> None:
    gone = raw_key(T0, SHARD, 1, 1)
    put_raw(s3, lake.raw, gone, [event("gone", T0)])
    s3.delete_object(Bucket=lake.raw, Key=gone)
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 2, 2), [event("kept", T0)])

    report = _compact(lake, session)

    assert (report.raw_objects, report.rows_written) == (2, 1)
    assert _sales_ids(lake, session) == ["kept"]
    assert _queued(sqs, lake) == (0, 0)


def test_given_a_batch_under_an_old_arrival_day_when_compacted_then_its_event_finds_it(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    for day in range(20):
        arrival = T0 + timedelta(days=day)
        put_raw(s3, lake.raw, raw_key(arrival, SHARD, day, day), [event(f"d{day}", arrival)])
    _compact(lake, session)
    # After an outage a retried batch lands under its first record's arrival, 19 days ago,
    # long past the listing's open window.
    put_raw(s3, lake.raw, raw_key(T0, "shardId-000000000001", 5, 5), [event("late", T0)])

    report = _compact(lake, session)

    assert (report.raw_objects, report.rows_written) == (1, 1)
    assert "late" in _sales_ids(lake, session)


def test_given_more_objects_compacted_when_the_manifest_is_read_then_its_size_does_not_grow(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 0, 0), [event("first", T0)])
    _compact(lake, session)
    small = len(_manifest(s3, lake))
    for day in range(1, 9):
        for n in range(5):
            arrival = T0 + timedelta(days=day, minutes=n)
            key = raw_key(arrival, SHARD, day * 10 + n, day * 10 + n)
            put_raw(s3, lake.raw, key, [event(f"d{day}-{n}", arrival)])
    _compact(lake, session)

    assert len(_manifest(s3, lake)) == small
    assert json.loads(_manifest(s3, lake))["max_event_date"] == "2024-03-09"


def test_given_a_queue_lake_when_swept_then_the_listing_still_finds_every_object(
    lake: Lake, session: boto3.session.Session, s3: Any
) -> None:
    put_raw(s3, lake.raw, raw_key(T0, SHARD, 1, 1), [event("e1", T0)])
    _compact(lake, session)

    # The sweep (no queue) re-reads the open window: already compacted, nothing new lands.
    swept = run_compaction(
        raw_bucket=lake.raw, curated_bucket=lake.curated, database=lake.database, session=session
    )

    assert (swept.raw_keys_listed, swept.raw_objects, swept.rows_written) == (1, 1, 0)
    assert swept.duplicates_dropped == 1
    assert _sales_ids(lake, session) == ["e1"]
