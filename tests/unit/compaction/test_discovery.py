"""Finding new raw objects from S3's notifications: parsing, ordering, the bounded drain."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipeline.compaction.discovery import (
    FIRST_WAIT_SECONDS,
    drain,
    released_on_failure,
    settle,
)
from pipeline.compaction.notifications import Notified, latest_by_key, raw_objects_named
from pipeline.compaction.queue import Message
from pipeline.compaction.state import Manifest, Pending, commit_run
from pipeline.compaction.store import ObjectInfo
from pipeline.errors import TransientError

RAW = "raw-bucket"


def s3_event(
    key: str,
    *,
    bucket: str = RAW,
    name: str = "ObjectCreated:Put",
    size: int = 10,
    etag: str = "e1",
    sequencer: str = "0A",
) -> str:
    """One S3 event message as S3 sends it (the key URL-encoded)."""
    from urllib.parse import quote_plus

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": etag,
                "sequencer": sequencer,
            },
        },
    }
    return json.dumps({"Records": [record]})


def key(n: int, day: str = "2026/01/01") -> str:
    return f"sales/{day}/shardId-000000000000-{n:05d}-{n:05d}.json"


class FakeQueue:
    """``RawQueue`` over a list: what each receive asked for, what was deleted, released."""

    def __init__(self, bodies: list[str]) -> None:
        self.messages = [Message(str(i), f"r{i}", b) for i, b in enumerate(bodies)]
        self.asks: list[tuple[int, int]] = []
        self.deleted: list[str] = []
        self.released: list[str] = []
        self.url = "https://sqs/q"

    def receive(self, n: int, *, wait_seconds: int) -> list[Message]:
        self.asks.append((n, wait_seconds))
        out, self.messages = self.messages[:n], self.messages[n:]
        return out

    def delete(self, receipts: Any) -> int:
        self.deleted += receipts
        return 0

    def release(self, receipts: Any) -> None:
        self.released += receipts

    def waiting(self) -> int:
        return len(self.messages)


# ---------------------------------------------------------------- one message


def test_given_s3s_event_when_read_then_the_raw_object_is_named_with_its_key_decoded() -> None:
    k = "sales/2026/01/01/shardId-000000000000-1 2=3-4.json"

    (named,) = raw_objects_named(s3_event(k, size=12, etag="abc", sequencer="0F"), RAW)

    assert named == Notified(k, "abc", 12, "0F")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": RAW}),
        "not json {",
        "[]",
        "null",
        json.dumps({"Records": "x"}),
        json.dumps({"Records": [1, None, {"eventSource": "aws:s3"}]}),
        s3_event(key(1), bucket="another-bucket"),
        s3_event(key(1), name="ObjectRemoved:Delete"),
        s3_event("quarantine/2026/01/01/x.json"),
        s3_event("sales/2026/01/01/notes.txt"),
        s3_event("sales/2026/13/01/x.json"),
    ],
    ids=[
        "test-event",
        "not-json",
        "a-list",
        "null",
        "records-not-a-list",
        "records-not-s3",
        "another-bucket",
        "removed",
        "outside-sales",
        "not-json-suffix",
        "no-arrival-day",
    ],
)
def test_given_a_message_naming_no_raw_object_when_read_then_nothing_is_named(body: str) -> None:
    assert raw_objects_named(body, RAW) == []


def test_given_sequencers_of_different_lengths_then_they_compare_right_padded() -> None:
    a = Notified("k", "e", 1, "0055AED6DCD90281E5")
    b = Notified("k", "e", 1, "0055AED6DCD90281E6")
    shorter = Notified("k", "e", 1, "0055AED6DCD90281F")  # ...F0 once padded

    assert b.is_after(a) and not a.is_after(b)
    assert shorter.is_after(b)
    assert not a.is_after(a)


def test_given_two_events_of_one_key_in_any_order_then_the_latest_wins() -> None:
    old = Notified(key(1), "old", 10, "01")
    new = Notified(key(1), "new", 20, "02")

    assert latest_by_key([old, new])[key(1)].etag == "new"
    assert latest_by_key([new, old])[key(1)].etag == "new"


# ---------------------------------------------------------------- the drain


def test_given_a_queue_when_drained_then_batches_of_ten_and_only_the_first_waits() -> None:
    queue = FakeQueue([s3_event(key(n)) for n in range(23)])

    pending = drain(queue, RAW)  # type: ignore[arg-type]

    assert queue.asks == [(10, FIRST_WAIT_SECONDS), (10, 0), (10, 0), (10, 0)]
    assert [o.key for o in pending.objects] == [key(n) for n in range(23)]
    assert (pending.left, pending.ignored, pending.from_queue) == (0, 0, True)
    assert len(pending.receipts) == 23
    assert queue.deleted == []


def test_given_more_than_the_bound_when_drained_then_n_are_taken_and_the_rest_counted() -> None:
    queue = FakeQueue([s3_event(key(n)) for n in range(30)])

    pending = drain(queue, RAW, max_objects=12)  # type: ignore[arg-type]

    assert queue.asks == [(10, FIRST_WAIT_SECONDS), (2, 0)]
    assert (len(pending.objects), pending.left) == (12, 18)


def test_given_repeats_overwrites_and_odd_messages_when_drained_then_keys_once_oldest_first() -> (
    None
):
    bodies = [
        s3_event(key(2, "2026/01/02"), etag="late", sequencer="0B"),
        s3_event(key(1), etag="v2", size=2, sequencer="0C"),
        "garbage",
        s3_event(key(1), etag="v1", size=1, sequencer="0A"),
        json.dumps({"Event": "s3:TestEvent"}),
    ]
    queue = FakeQueue(bodies)

    pending = drain(queue, RAW)  # type: ignore[arg-type]

    assert pending.objects == [
        ObjectInfo(key(1), "v2", 2),
        ObjectInfo(key(2, "2026/01/02"), "late", 10),
    ]
    assert (pending.ignored, len(pending.receipts)) == (2, 5)


def test_given_a_committed_run_then_settle_deletes_every_message_it_took() -> None:
    queue = FakeQueue([s3_event(key(1)), "garbage"])
    pending = drain(queue, RAW)  # type: ignore[arg-type]

    settle(queue, pending)  # type: ignore[arg-type]

    assert queue.deleted == ["r0", "r1"]
    assert settle(None, pending) == 0


def test_given_a_run_that_raises_then_its_messages_are_released_and_the_error_kept() -> None:
    queue = FakeQueue([s3_event(key(1))])
    pending = drain(queue, RAW)  # type: ignore[arg-type]

    with pytest.raises(TransientError, match="^boom$"), released_on_failure(queue, pending):  # type: ignore[arg-type]
        raise TransientError("boom")

    assert (queue.released, queue.deleted) == (["r0"], [])


def test_given_a_queue_run_when_committed_then_the_manifest_keeps_no_object() -> None:
    manifest = Manifest(days={date(2026, 1, 1): {key(1): "e1"}}, watermark=date(2025, 12, 24))
    pending = Pending([ObjectInfo(key(2), "e", 1)], receipts=("r",), from_queue=True)
    saved: list[bytes] = []

    class Store:
        def put(self, bucket: str, k: str, body: bytes, content_type: str) -> None:
            saved.append(body)

    commit_run(
        Store(),  # type: ignore[arg-type]
        "curated",
        manifest,
        pending,
        compacted_at=datetime(2026, 1, 1, tzinfo=UTC),
        progress=lambda *_: None,
    )

    assert (manifest.days, manifest.entries, manifest.watermark) == ({}, 0, date(2025, 12, 24))
    assert json.loads(saved[0])["days"] == {}


def test_given_a_receive_that_fails_mid_drain_then_the_messages_taken_are_released() -> None:
    queue = FakeQueue([s3_event(key(n)) for n in range(15)])
    receive = queue.receive

    def flaky(n: int, *, wait_seconds: int) -> list[Message]:
        if queue.asks:
            queue.asks.append((n, wait_seconds))
            raise TransientError("receive: ThrottlingException (400)")
        return receive(n, wait_seconds=wait_seconds)

    queue.receive = flaky  # type: ignore[method-assign]

    with pytest.raises(TransientError, match="^receive: ThrottlingException"):
        drain(queue, RAW)  # type: ignore[arg-type]

    assert queue.released == [f"r{n}" for n in range(10)]
