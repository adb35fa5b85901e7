"""One shard's delivery state without AWS: bisected pieces, attempts, windows, expiry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.local.event_source.invocation import (
    Failed,
    FunctionError,
    InvocationResult,
    PartiallyFailed,
    Succeeded,
)
from pipeline.local.event_source.payloads import MAX_PAYLOAD_BYTES
from pipeline.local.event_source.shard_state import ShardState

if TYPE_CHECKING:
    from collections.abc import Callable

UNHANDLED = Failed(FunctionError.UNHANDLED)


def records(*data: str, arrival: float = 1_000.0) -> list[dict[str, Any]]:
    return [
        {
            "Data": d.encode(),
            "PartitionKey": "k",
            "SequenceNumber": f"{i:056d}",
            "ApproximateArrivalTimestamp": arrival + i,
        }
        for i, d in enumerate(data)
    ]


def shard_with(*data: str) -> ShardState:
    shard = ShardState("shardId-000000000000")
    shard.add(records(*data), now=0.0)
    return shard


def drive(
    shard: ShardState,
    respond: Callable[[list[str]], InvocationResult],
    *,
    batch_size: int = 10,
    bisect: bool = False,
    retries: int = -1,
) -> tuple[list[list[str]], list[tuple[list[str], int]]]:
    """Deliver until the buffer is empty, as the poller does; the batches and give-ups."""
    batches: list[list[str]] = []
    given_up: list[tuple[list[str], int]] = []
    while shard.buffered:
        batch = shard.next_batch(batch_size)
        data = [r["Data"].decode() for r in batch]
        batches.append(data)
        settlement = shard.settle(
            batch, respond(data), bisect_on_error=bisect, maximum_retry_attempts=retries, now=0.0
        )
        if settlement.exhausted is not None:
            gone = settlement.exhausted.records
            given_up.append(([r["Data"].decode() for r in gone], settlement.exhausted.attempts))
            shard.consume(len(gone), now=0.0)
    return batches, given_up


def test_given_a_poison_record_when_bisecting_then_halves_go_in_order_until_it_is_alone():
    shard = shard_with("a", "b", "poison", "c")

    batches, given_up = drive(
        shard,
        lambda data: UNHANDLED if "poison" in data else Succeeded(),
        bisect=True,
        retries=0,
    )

    assert batches == [["a", "b", "poison", "c"], ["a", "b"], ["poison", "c"], ["poison"], ["c"]]
    assert given_up == [(["poison"], 1)]
    assert shard.checkpoint == f"{3:056d}"


def test_given_bisection_when_a_batch_splits_then_no_attempt_is_counted():
    shard = shard_with("a", "b")
    batch = shard.next_batch(10)

    settlement = shard.settle(
        batch, UNHANDLED, bisect_on_error=True, maximum_retry_attempts=0, now=0.0
    )

    assert settlement.bisected
    assert settlement.exhausted is None
    assert shard.attempts == 0


def test_given_a_failing_batch_when_retries_run_out_then_the_whole_batch_is_given_up():
    shard = shard_with("r0", "r1", "r2")

    batches, given_up = drive(shard, lambda data: UNHANDLED, retries=2)

    assert batches == [["r0", "r1", "r2"]] * 3
    assert given_up == [(["r0", "r1", "r2"], 3)]
    assert shard.buffered == 0


def test_given_a_partial_failure_when_settled_then_the_done_prefix_is_checkpointed():
    shard = shard_with("r0", "r1", "r2", "r3")
    batch = shard.next_batch(10)

    settlement = shard.settle(
        batch, PartiallyFailed(2), bisect_on_error=False, maximum_retry_attempts=-1, now=5.0
    )

    assert settlement.checkpointed == 2
    assert shard.checkpoint == batch[1]["SequenceNumber"]
    assert shard.attempts == 1  # the first try of the batch that resumes at r2
    # A retry goes at once, whatever the batching window.
    assert shard.ready(batch_size=10, window_s=3600, now=5.0)
    assert [r["Data"] for r in shard.next_batch(10)] == [b"r2", b"r3"]


def test_given_partial_failures_when_they_repeat_then_attempts_count_from_the_resume_point():
    shard = shard_with("r0", "r1", "r2")

    def fail_r1(data: list[str]) -> InvocationResult:
        return PartiallyFailed(data.index("r1")) if "r1" in data else Succeeded()

    batches, given_up = drive(shard, fail_r1, retries=1)

    assert batches == [["r0", "r1", "r2"], ["r1", "r2"]]
    assert given_up == [(["r1", "r2"], 2)]


def test_given_bisect_when_a_partial_failure_then_only_the_rest_of_that_batch_goes_again():
    shard = shard_with("r0", "r1", "r2", "r3", "r4")
    seen: list[list[str]] = []

    def fail_r1_once(data: list[str]) -> InvocationResult:
        seen.append(data)
        return PartiallyFailed(1) if len(seen) == 1 else Succeeded()

    batches, _ = drive(shard, fail_r1_once, batch_size=3, bisect=True)

    assert batches == [["r0", "r1", "r2"], ["r1", "r2"], ["r3", "r4"]]


def test_given_records_over_the_payload_limit_when_taken_then_the_batch_stops_short():
    # Base64 makes each record 0.4 of the limit: two fit one payload, three do not.
    big = "x" * int(MAX_PAYLOAD_BYTES * 0.3)
    shard = shard_with(big, big, big)

    batches, _ = drive(shard, lambda data: Succeeded())

    assert [len(b) for b in batches] == [2, 1]


def test_given_a_window_when_the_batch_is_not_full_then_it_waits_until_the_window_closes():
    shard = ShardState("s")
    shard.add(records("a"), now=10.0)
    shard.add(records("b"), now=11.0)

    assert not shard.ready(batch_size=3, window_s=2.0, now=11.5)
    assert shard.window_closes_in(2.0, 11.5) == 0.5
    assert shard.ready(batch_size=3, window_s=2.0, now=12.0)
    assert shard.ready(batch_size=2, window_s=2.0, now=10.0)  # full
    assert shard.ready(batch_size=3, window_s=0.0, now=10.0)  # no window
    assert shard.window_closes_in(0.0, 10.0) is None


def test_given_expired_records_when_consumed_then_their_pieces_shrink_and_the_rest_stays():
    shard = ShardState("s")
    shard.add(records("a", "b", "c", "d", arrival=100.0), now=0.0)
    shard.settle(
        shard.next_batch(10), UNHANDLED, bisect_on_error=True, maximum_retry_attempts=-1, now=0.0
    )

    expired = shard.expired(max_age_s=60, now_epoch=162.5)  # ages 62.5, 61.5, 60.5, 59.5 s
    assert [r["Data"] for r in expired] == [b"a", b"b", b"c"]
    shard.consume(len(expired), now=0.0)

    assert [r["Data"] for r in shard.next_batch(10)] == [b"d"]
    assert shard.expired(max_age_s=-1, now_epoch=1e12) == []


def test_given_records_when_consumed_then_checkpoint_and_attempts_move_on():
    shard = shard_with("a", "b")
    batch = shard.next_batch(10)
    shard.settle(batch, UNHANDLED, bisect_on_error=False, maximum_retry_attempts=-1, now=0.0)
    assert shard.attempts == 1

    shard.consume(2, now=0.0)

    assert shard.attempts == 0
    assert shard.checkpoint == batch[1]["SequenceNumber"]
    assert shard.read_position == batch[1]["SequenceNumber"]
    assert not shard.ready(batch_size=10, window_s=0.0, now=0.0)
