"""The loop: read every shard, deliver the batches that are ready, apply their results.

As Lambda runs one invocation per shard, shards are served concurrently, one thread each,
with one batch in flight per shard.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import EXPIRED_ITERATOR, error_code
from pipeline.errors import ConfigurationError, TransientError
from pipeline.local.event_source.checkpoints import CheckpointStore
from pipeline.local.event_source.invocation import Failed, PartiallyFailed, invoke
from pipeline.local.event_source.mapping import EventSourceMapping
from pipeline.local.event_source.observer import NULL_OBSERVER
from pipeline.local.event_source.output import HandlerLog
from pipeline.local.event_source.payloads import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    lambda_event,
    s3_failure_document,
    s3_failure_key,
)
from pipeline.local.event_source.shard_state import ShardState

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pipeline.local.event_source.invocation import FunctionError, Invocation
    from pipeline.local.event_source.observer import PollObserver
    from pipeline.local.event_source.payloads import Record
    from pipeline.local.invoke import Handler
    from pipeline.local.stack import LocalStack

#: How long an idle poller waits before polling its shards again.
IDLE_POLL_S: Final = 0.2


@dataclass
class PollStats:
    """What a poller did: invocations, outcomes, discarded records and stream lag values."""

    invocations: int = 0
    records_invoked: int = 0
    records_checkpointed: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    records_expired: int = 0
    records_retries_exhausted: int = 0
    #: Objects written to the on-failure bucket (one per discarded batch).
    failed_batches_written: int = 0
    lags_ms: list[float] = field(default_factory=list)
    caught_up: bool = False


class LocalPoller:
    """Polls every shard of the mapping's stream and invokes ``handler`` like Lambda would.

    Each shard's state is only ever touched by the one thread serving it; what the shards
    share (stats, checkpoints, the log, the lazy clients) is guarded, so ``handler`` must be
    thread-safe, as module state shared by Lambda invocations is not. Call ``poll_once``,
    ``drain`` and ``run`` from one thread at a time.

    ``keep_lags=False`` leaves :attr:`PollStats.lags_ms` empty: over a long run keeping
    every event's lag would itself grow the process; an ``observer`` can take them instead.
    """

    def __init__(
        self,
        stack: LocalStack,
        function_logical_id: str,
        handler: Handler,
        *,
        kinesis_client: Any = None,
        s3_client: Any = None,
        mapping: EventSourceMapping | None = None,
        checkpoint_path: Path | None = None,
        log_path: Path | None = None,
        observer: PollObserver = NULL_OBSERVER,
        keep_lags: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.mapping = mapping or EventSourceMapping.from_template(stack, function_logical_id)
        self.handler = handler
        self.observer = observer
        self.checkpoints = CheckpointStore(self.mapping.stream_arn, checkpoint_path)
        self.log = HandlerLog(log_path)
        self.stats = PollStats()
        self._keep_lags = keep_lags
        self._stack = stack
        self._kinesis = kinesis_client
        self._s3 = s3_client
        self._clock = clock
        self._wall_clock = wall_clock
        self._shards: list[ShardState] | None = None
        self._lock = threading.Lock()

    @property
    def log_path(self) -> Path | None:
        """Where the handler's output goes (None: nowhere)."""
        return self.log.path

    # ------------------------------------------------------------------ clients
    @property
    def kinesis(self) -> Any:
        with self._lock:
            if self._kinesis is None:
                self._kinesis = self._stack.session().client("kinesis")
            return self._kinesis

    @property
    def s3(self) -> Any:
        with self._lock:
            if self._s3 is None:
                self._s3 = self._stack.session().client("s3")
            return self._s3

    # ------------------------------------------------------------------ public
    def start(self) -> list[ShardState]:
        """Position every shard (checkpoint, else ``StartingPosition``); idempotent."""
        if self._shards is None:
            shards = []
            for shard_id in self._list_shards():
                shard = ShardState(shard_id, checkpoint=self.checkpoints.get(shard_id))
                self._position(shard)
                shards.append(shard)
            self._shards = shards
        return self._shards

    def poll_once(self) -> int:
        """Read from every shard and deliver the batches that are ready; return how many.

        Shards are served concurrently (at most one batch each); this returns when all are.
        """
        shards = self.start()
        with ThreadPoolExecutor(len(shards), thread_name_prefix="poller") as pool:
            delivered = sum(pool.map(self._step, shards))
        self._note_caught_up(shards)
        return delivered

    def drain(self, timeout_s: float = 60.0) -> PollStats:
        """Poll until every shard is caught up (or ``timeout_s`` passes); return the stats."""
        deadline = self._clock() + timeout_s
        while True:
            delivered = self.poll_once()
            if self.stats.caught_up or self._clock() >= deadline:
                return self.stats
            if not delivered:
                time.sleep(0.02)

    def run(self, stop: threading.Event) -> PollStats:
        """Poll until ``stop`` is set (``fmcg consume --follow``).

        One thread per shard, so no shard waits for another's batch. An error in one ends
        them all and is raised here.
        """
        shards = self.start()
        failed = threading.Event()
        with ThreadPoolExecutor(len(shards), thread_name_prefix="poller") as pool:
            workers = [pool.submit(self._follow, shard, shards, stop, failed) for shard in shards]
        for worker in workers:
            worker.result()
        return self.stats

    # ------------------------------------------------------------------ scheduling
    def _follow(
        self,
        shard: ShardState,
        shards: list[ShardState],
        stop: threading.Event,
        failed: threading.Event,
    ) -> None:
        try:
            while not (stop.is_set() or failed.is_set()):
                delivered = self._step(shard)
                self._note_caught_up(shards)
                if not delivered:
                    stop.wait(self._idle_wait(shard))
        except BaseException:
            failed.set()
            raise

    def _step(self, shard: ShardState) -> bool:
        """Read from ``shard`` and deliver its batch if it is ready; whether one went."""
        self._fill(shard)
        ready = shard.ready(
            batch_size=self.mapping.batch_size,
            window_s=self.mapping.batching_window_s,
            now=self._clock(),
        )
        if ready:
            self._deliver(shard)
        return ready

    def _idle_wait(self, shard: ShardState) -> float:
        """How long a shard with nothing to deliver waits: at most until its window closes."""
        closes = shard.window_closes_in(self.mapping.batching_window_s, self._clock())
        return IDLE_POLL_S if closes is None else max(0.0, min(IDLE_POLL_S, closes))

    def _note_caught_up(self, shards: list[ShardState]) -> None:
        self.stats.caught_up = all(s.caught_up for s in shards)

    # ------------------------------------------------------------------ reading
    def _list_shards(self) -> list[str]:
        try:
            shards = self.kinesis.list_shards(StreamName=self.mapping.stream_name)["Shards"]
        except (ClientError, BotoCoreError) as e:
            raise ConfigurationError(
                f"cannot list shards of {self.mapping.stream_name}: {e}"
            ) from e
        return [s["ShardId"] for s in shards]

    def _position(self, shard: ShardState) -> None:
        after = shard.read_position
        kwargs: dict[str, Any] = {"StreamName": self.mapping.stream_name, "ShardId": shard.shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        else:
            kwargs["ShardIteratorType"] = self.mapping.starting_position
        shard.iterator = self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _fill(self, shard: ShardState) -> None:
        if shard.buffered >= self.mapping.batch_size or shard.iterator is None:
            return
        try:
            response = self.kinesis.get_records(
                ShardIterator=shard.iterator,
                Limit=max(1, min(10_000, self.mapping.batch_size - shard.buffered)),
            )
        except ClientError as e:
            if error_code(e) == EXPIRED_ITERATOR:
                self._position(shard)
                return
            raise TransientError(f"GetRecords on {shard.shard_id}: {e}") from e
        shard.iterator = response.get("NextShardIterator")
        records = response["Records"]
        shard.add(records, now=self._clock())
        shard.behind = bool(records) or int(response.get("MillisBehindLatest", 0)) > 0

    # ------------------------------------------------------------------ delivering
    def _deliver(self, shard: ShardState) -> None:
        self._expire(shard)
        batch = shard.next_batch(self.mapping.batch_size)
        if not batch:
            return
        with self._lock:
            self.stats.invocations += 1
            self.stats.records_invoked += len(batch)
        invocation = self._invoke(shard, batch)
        result = invocation.result
        settlement = shard.settle(
            batch,
            result,
            bisect_on_error=self.mapping.bisect_on_error,
            maximum_retry_attempts=self.mapping.maximum_retry_attempts,
            now=self._clock(),
        )
        with self._lock:
            if settlement.bisected:
                self.stats.bisections += 1
            if isinstance(result, PartiallyFailed):
                self.stats.partial_failures += 1
        self._checkpointed(shard, settlement.checkpointed)
        if (exhausted := settlement.exhausted) is not None:
            with self._lock:
                self.stats.records_retries_exhausted += len(exhausted.records)
            error = result.error if isinstance(result, Failed) else None
            self._send_failure(
                shard, exhausted.records, RETRY_ATTEMPTS_EXHAUSTED, exhausted.attempts, error
            )
            self._checkpointed(shard, shard.consume(len(exhausted.records), now=self._clock()))

    def _invoke(self, shard: ShardState, batch: list[Record]) -> Invocation:
        invocation = invoke(
            self.handler,
            lambda_event(self.mapping, shard.shard_id, batch),
            batch,
            shard_id=shard.shard_id,
            function_name=self.mapping.function_name,
            report_batch_item_failures=self.mapping.report_batch_item_failures,
        )
        self.log.append(invocation.output, invocation.traceback)
        with self._lock:
            if self._keep_lags:
                self.stats.lags_ms.extend(invocation.lags_ms)
            if invocation.traceback is not None:
                self.stats.function_errors += 1
        self.observer.on_invocation(invocation)
        return invocation

    def _expire(self, shard: ShardState) -> None:
        expired = shard.expired(
            max_age_s=self.mapping.maximum_record_age_s, now_epoch=self._wall_clock()
        )
        if not expired:
            return
        with self._lock:
            self.stats.records_expired += len(expired)
        self._send_failure(shard, expired, RECORD_AGE_EXCEEDED, shard.attempts, None)
        self._checkpointed(shard, shard.consume(len(expired), now=self._clock()))

    def _checkpointed(self, shard: ShardState, count: int) -> None:
        """Record that ``shard`` checkpointed ``count`` more records (durably, with a file)."""
        if count <= 0 or shard.checkpoint is None:
            return
        self.checkpoints.save(shard.shard_id, shard.checkpoint)
        with self._lock:
            self.stats.records_checkpointed += count

    def _send_failure(
        self,
        shard: ShardState,
        batch: list[Record],
        condition: str,
        attempts: int,
        function_error: FunctionError | None,
    ) -> None:
        bucket = self.mapping.on_failure_bucket
        if not bucket:
            return
        now = self._wall_clock()
        body = s3_failure_document(
            self.mapping,
            shard.shard_id,
            batch,
            condition=condition,
            attempts=attempts,
            function_error=function_error,
            now_epoch=now,
        )
        key = s3_failure_key(self.mapping, shard.shard_id, now)
        try:
            self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode("utf-8"))
        except (ClientError, BotoCoreError) as e:
            # Lambda would count a DestinationDeliveryFailure and drop the records; locally
            # the poller stops before checkpointing past them, so nothing is lost silently.
            raise TransientError(f"PutObject to the on-failure bucket s3://{bucket}: {e}") from e
        with self._lock:
            self.stats.failed_batches_written += 1
