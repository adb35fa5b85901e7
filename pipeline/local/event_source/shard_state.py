"""One shard's delivery state: its position, the records read but not done, their retries.

Pure: no AWS, no clock of its own (callers pass the time). The owner is the one thread
serving the shard, as Lambda serves a shard with one batch in flight.

Records leave the buffer only by being checkpointed (:meth:`ShardState.consume`): done,
expired, or given up after their retries. Two pieces of Lambda's retry semantics live here:

- bisection (``BisectBatchOnFunctionError``): a batch that failed as a whole is split in two
  and the halves go in order, each again split if it fails. The sizes of the pieces still
  to deliver are a queue whose front is the batch in flight;
- attempts (``MaximumRetryAttempts``): the failed tries of the batch that starts at one
  sequence number. Splitting does not count as a try (Lambda's rule); a partial failure
  counts as a try of the batch that resumes at the lowest failed record.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.local.event_source.invocation import Failed, PartiallyFailed, Succeeded
from pipeline.local.event_source.payloads import MAX_PAYLOAD_BYTES, arrival_epoch, payload_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pipeline.local.event_source.invocation import InvocationResult
    from pipeline.local.event_source.payloads import Record


@dataclass(frozen=True)
class RetriesExhausted:
    """Records whose tries ran out: they go to the on-failure destination, then are skipped."""

    records: list[Record]
    attempts: int


@dataclass(frozen=True)
class Settlement:
    """What one invocation's result did to the shard."""

    #: Records now done, checkpointed up to :attr:`ShardState.checkpoint`.
    checkpointed: int = 0
    bisected: bool = False
    #: Still buffered until the caller has reported them and called ``consume``.
    exhausted: RetriesExhausted | None = None


class ShardState:
    """Position, buffered records, bisected pieces and attempts of one shard."""

    def __init__(self, shard_id: str, checkpoint: str | None = None) -> None:
        self.shard_id = shard_id
        #: The last record done; delivery resumes after it.
        self.checkpoint = checkpoint
        #: The shard iterator of the next read (None once a closed shard is read to its end).
        self.iterator: str | None = None
        #: The last record read (buffered, maybe not done): reading resumes after it.
        self.last_read: str | None = None
        #: Whether the last read found records or the stream reported more behind.
        self.behind = True
        self._buffer: deque[Record] = deque()
        # When the oldest buffered record was read: the batching window runs from then.
        self._buffered_at: float | None = None
        # Sizes of bisected pieces still to deliver, front first; empty = use BatchSize.
        self._pieces: deque[int] = deque()
        self._attempts = 0
        self._attempts_at: str | None = None

    @property
    def read_position(self) -> str | None:
        """The sequence number reading resumes after (None: at ``StartingPosition``)."""
        return self.last_read or self.checkpoint

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def caught_up(self) -> bool:
        """Nothing behind in the stream and nothing read left to deliver."""
        return not self.behind and not self._buffer

    @property
    def attempts(self) -> int:
        """Failed tries of the batch at the front (Lambda's ``approximateInvokeCount``)."""
        return self._attempts

    # ------------------------------------------------------------------ reading
    def add(self, records: Iterable[Record], *, now: float) -> None:
        """Buffer records just read."""
        before = len(self._buffer)
        self._buffer.extend(records)
        if len(self._buffer) == before:
            return
        if self._buffered_at is None:
            self._buffered_at = now
        self.last_read = self._buffer[-1]["SequenceNumber"]

    # ------------------------------------------------------------------ scheduling
    def ready(self, *, batch_size: int, window_s: float, now: float) -> bool:
        """Whether a batch goes now: full, its window closed, or a retry or piece waiting."""
        if not self._buffer:
            return False
        if self._pieces or self._attempts:
            return True  # a retry or a bisected piece goes at once
        if len(self._buffer) >= batch_size or window_s <= 0:
            return True
        assert self._buffered_at is not None
        return now - self._buffered_at >= window_s

    def window_closes_in(self, window_s: float, now: float) -> float | None:
        """Seconds until the batching window of the buffered records closes (None: no window)."""
        if self._buffered_at is None or window_s <= 0:
            return None
        return self._buffered_at + window_s - now

    def expired(self, *, max_age_s: int, now_epoch: float) -> list[Record]:
        """The buffered records older than ``max_age_s`` (-1: none ever are); not removed."""
        if max_age_s < 0:
            return []
        expired: list[Record] = []
        # Arrival times grow along a shard, so expired records are a prefix.
        for record in self._buffer:
            if now_epoch - arrival_epoch(record) <= max_age_s:
                break
            expired.append(record)
        return expired

    # ------------------------------------------------------------------ delivering
    def next_batch(self, batch_size: int) -> list[Record]:
        """The batch to invoke: the front piece (else ``batch_size``) within the payload limit."""
        size = self._pieces[0] if self._pieces else batch_size
        batch: list[Record] = []
        payload = 0
        for record in self._buffer:
            cost = payload_bytes(record)
            if len(batch) >= size or (batch and payload + cost > MAX_PAYLOAD_BYTES):
                break
            batch.append(record)
            payload += cost
        if self._pieces and len(batch) < self._pieces[0]:
            # The payload limit cut the piece: the rest becomes its own piece.
            self._pieces[0] -= len(batch)
            self._pieces.appendleft(len(batch))
        if batch and self._attempts_at != batch[0]["SequenceNumber"]:
            self._attempts, self._attempts_at = 0, batch[0]["SequenceNumber"]
        return batch

    def settle(
        self,
        batch: list[Record],
        result: InvocationResult,
        *,
        bisect_on_error: bool,
        maximum_retry_attempts: int,
        now: float,
    ) -> Settlement:
        """Apply the result of invoking ``batch`` (the last :meth:`next_batch`)."""
        match result:
            case Succeeded():
                return Settlement(checkpointed=self.consume(len(batch), now=now))
            case Failed() if bisect_on_error and len(batch) > 1:
                # The front piece is this batch: it becomes its two halves, first half first.
                half = len(batch) // 2
                if self._pieces:
                    self._pieces.popleft()
                self._pieces.extendleft([len(batch) - half, half])
                return Settlement(bisected=True)
            case Failed():
                return Settlement(exhausted=self._count_attempt(batch, maximum_retry_attempts))
            case PartiallyFailed(resume_at=done):
                checkpointed = self.consume(done, now=now)
                rest = batch[done:]
                if bisect_on_error and not self._pieces:
                    # With bisect only the rest of this batch goes again, not a full batch.
                    self._pieces.append(len(rest))
                self._attempts_at = rest[0]["SequenceNumber"]
                exhausted = self._count_attempt(rest, maximum_retry_attempts)
                return Settlement(checkpointed=checkpointed, exhausted=exhausted)

    def _count_attempt(self, batch: list[Record], limit: int) -> RetriesExhausted | None:
        self._attempts += 1
        if limit < 0 or self._attempts <= limit:
            return None
        return RetriesExhausted(batch, self._attempts)

    def consume(self, count: int, *, now: float) -> int:
        """Checkpoint the first ``count`` buffered records (done or skipped); return ``count``."""
        if count <= 0:
            return 0
        for _ in range(count - 1):
            self._buffer.popleft()
        self.checkpoint = self._buffer.popleft()["SequenceNumber"]
        taken = count
        while taken and self._pieces:
            cut = min(taken, self._pieces[0])
            self._pieces[0] -= cut
            taken -= cut
            if self._pieces[0] == 0:
                self._pieces.popleft()
        self._attempts, self._attempts_at = 0, None
        self._buffered_at = now if self._buffer else None
        return count
