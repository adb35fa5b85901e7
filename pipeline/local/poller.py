"""The local Kinesis event source mapping: Lambda's polling and delivery semantics, in-process.

The mapping's properties come from the function's ``Events`` entry of ``Type: Kinesis`` in
the template, and the poller honours them as Lambda does:

- ``StartingPosition`` (``TRIM_HORIZON`` / ``LATEST``) for shards without a checkpoint;
- ``BatchSize`` and ``MaximumBatchingWindowInSeconds``: a batch goes when it is full, when
  the window since its first record was read has passed, or (window 0) at once; a batch
  also stays under Lambda's 6 MB synchronous payload;
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: records before the lowest failed
  sequence number are checkpointed and delivery resumes from it; an invalid identifier
  fails the whole batch;
- a handler exception fails the whole batch; ``BisectBatchOnFunctionError`` then splits it
  in two and retries the halves in order (splitting does not consume the retry quota);
- ``MaximumRetryAttempts`` (-1 = until the records expire) and ``MaximumRecordAgeInSeconds``
  (-1 = never): records that exhaust them are skipped and a Lambda-style failure record
  (``KinesisBatchInfo``) goes to ``DestinationConfig.OnFailure`` (an SQS queue);
- concurrency and per-shard ordering: as Lambda runs one invocation per shard, shards are
  served concurrently, one thread each, with one batch in flight per shard; checkpoints in
  memory and optionally in a JSON file, so a restarted poller resumes after the last
  checkpoint.

``ParallelizationFactor`` above 1 is not emulated: it is read and reported, and shards are
processed with factor 1, which keeps per-key order trivially (Lambda keeps it too, by
hashing keys to concurrent batches; the observable semantics are the same, only slower).

Each invocation's stdout (EMF metric lines, Powertools JSON logs) is captured per thread,
appended to an optional log file, and ``StreamLagMilliseconds`` values found in EMF lines
are collected into :attr:`PollStats.lags_ms`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import EXPIRED_ITERATOR, error_code
from pipeline.errors import ConfigurationError, TransientError
from pipeline.local.template import resolve

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.local.stack import LocalStack

Handler = Callable[[dict[str, Any], Any], Any]

#: Lambda's synchronous invocation payload limit; a batch never exceeds it.
MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
#: Our estimate of the JSON envelope of one record in the event, beyond its data.
_RECORD_OVERHEAD: Final = 400
#: How long an idle poller waits before polling its shards again.
IDLE_POLL_S: Final = 0.2
LAG_METRIC: Final = "StreamLagMilliseconds"
#: What ``_invoke`` returns when the whole batch failed: the handler raised, or its partial
#: batch response was invalid (Lambda's ``functionError`` for each).
_UNHANDLED: Final = -1
_INVALID_RESPONSE: Final = -2
_FUNCTION_ERRORS: Final = {_UNHANDLED: "Unhandled", _INVALID_RESPONSE: "InvalidResponse"}


@dataclass(frozen=True)
class EventSourceMapping:
    """The properties of one Kinesis event source mapping (defaults are Lambda's)."""

    function_name: str
    stream_arn: str
    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "LATEST"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    on_failure_arn: str | None = None
    on_failure_queue_url: str | None = None
    parallelization_factor: int = 1

    @property
    def stream_name(self) -> str:
        return self.stream_arn.rsplit("/", 1)[-1]

    @property
    def function_arn(self) -> str:
        region, account = self.stream_arn.split(":")[3:5]
        return f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"

    @classmethod
    def from_template(cls, stack: LocalStack, function_logical_id: str) -> EventSourceMapping:
        """The mapping declared by the function's ``Type: Kinesis`` event in the template."""
        spec = stack.template["Resources"].get(function_logical_id)
        if spec is None:
            raise ConfigurationError(f"no resource {function_logical_id} in the template")
        events = spec.get("Properties", {}).get("Events", {})
        kinesis = [e for e in events.values() if e.get("Type") == "Kinesis"]
        if len(kinesis) != 1:
            raise ConfigurationError(
                f"{function_logical_id} has {len(kinesis)} Kinesis events; expected exactly 1"
            )
        props = resolve(kinesis[0].get("Properties", {}), stack.context())
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {})
        destination = on_failure.get("Destination")
        types = props.get("FunctionResponseTypes", []) or []
        return cls(
            function_name=function_logical_id,
            stream_arn=str(props["Stream"]),
            batch_size=int(props.get("BatchSize", 100)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=str(props.get("StartingPosition", "LATEST")),
            report_batch_item_failures="ReportBatchItemFailures" in types,
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            maximum_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            on_failure_arn=destination,
            on_failure_queue_url=_queue_url(stack, destination) if destination else None,
            parallelization_factor=int(props.get("ParallelizationFactor", 1)),
        )


def _queue_url(stack: LocalStack, arn: str) -> str:
    """The URL of the queue with this ARN: the ``Ref`` of an SQS queue is its URL."""
    for resource in stack.resources.values():
        if resource.type == "AWS::SQS::Queue" and resource.attributes.get("Arn") == arn:
            return resource.ref
    raise ConfigurationError(f"on-failure destination {arn} is not a queue of the stack")


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
    failure_messages: int = 0
    lags_ms: list[float] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    caught_up: bool = False


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None = None
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    buffered_at: float | None = None
    last_read: str | None = None
    checkpoint: str | None = None
    behind: bool = True
    # Sizes of bisected pieces still to deliver, front first; empty = use BatchSize.
    pieces: deque[int] = field(default_factory=deque)
    attempts: int = 0
    attempts_at: str | None = None
    # Lambda's functionError of the last failed invocation (None: a partial failure).
    last_error: str | None = None


class LocalPoller:
    """Polls every shard of the mapping's stream and invokes ``handler`` like Lambda would.

    Each shard's state is only ever touched by the one thread serving it; ``_lock`` guards
    what the shards share (stats, the checkpoint and log files, the lazy clients), so
    ``handler`` must be thread-safe, as module state shared by Lambda invocations is not.
    Call ``poll_once``, ``drain`` and ``run`` from one thread at a time.
    """

    def __init__(
        self,
        stack: LocalStack,
        function_logical_id: str,
        handler: Handler,
        *,
        kinesis_client: Any = None,
        sqs_client: Any = None,
        mapping: EventSourceMapping | None = None,
        checkpoint_path: Path | None = None,
        log_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.mapping = mapping or EventSourceMapping.from_template(stack, function_logical_id)
        self.handler = handler
        self._stack = stack
        self._kinesis = kinesis_client
        self._sqs = sqs_client
        self.checkpoint_path = checkpoint_path
        self.log_path = log_path
        self._clock = clock
        self._wall_clock = wall_clock
        self._shards: list[_Shard] | None = None
        # Not ``_lock``: a subclass may well have a lock of its own under that name.
        self._shared_lock = threading.Lock()
        self.stats = PollStats()

    # ------------------------------------------------------------------ clients
    @property
    def kinesis(self) -> Any:
        with self._shared_lock:
            if self._kinesis is None:
                self._kinesis = self._stack.session().client("kinesis")
            return self._kinesis

    @property
    def sqs(self) -> Any:
        with self._shared_lock:
            if self._sqs is None:
                self._sqs = self._stack.session().client("sqs")
            return self._sqs

    # ------------------------------------------------------------------ public
    def start(self) -> list[_Shard]:
        """Position every shard (checkpoint, else ``StartingPosition``); idempotent."""
        if self._shards is None:
            saved = self._load_checkpoints()
            shards = []
            for shard_id in self._list_shards():
                state = _Shard(shard_id, checkpoint=saved.get(shard_id))
                self._position(state)
                shards.append(state)
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

    def _follow(
        self, shard: _Shard, shards: list[_Shard], stop: threading.Event, failed: threading.Event
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

    def _step(self, shard: _Shard) -> bool:
        """Read from ``shard`` and deliver its batch if it is ready; whether one went."""
        self._fill(shard)
        if not self._ready(shard):
            return False
        self._deliver(shard)
        return True

    def _idle_wait(self, shard: _Shard) -> float:
        """How long a shard with nothing to deliver waits: at most until its window closes."""
        if shard.buffered_at is None or self.mapping.batching_window_s <= 0:
            return IDLE_POLL_S
        closes = shard.buffered_at + self.mapping.batching_window_s - self._clock()
        return max(0.0, min(IDLE_POLL_S, closes))

    def _note_caught_up(self, shards: list[_Shard]) -> None:
        self.stats.caught_up = all(not s.behind and not s.buffer for s in shards)

    # ------------------------------------------------------------------ reading
    def _list_shards(self) -> list[str]:
        try:
            shards = self.kinesis.list_shards(StreamName=self.mapping.stream_name)["Shards"]
        except (ClientError, BotoCoreError) as e:
            raise ConfigurationError(
                f"cannot list shards of {self.mapping.stream_name}: {e}"
            ) from e
        return [s["ShardId"] for s in shards]

    def _position(self, shard: _Shard) -> None:
        after = shard.last_read or shard.checkpoint
        kwargs: dict[str, Any] = {"StreamName": self.mapping.stream_name, "ShardId": shard.shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        else:
            kwargs["ShardIteratorType"] = self.mapping.starting_position
        shard.iterator = self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _fill(self, shard: _Shard) -> None:
        if len(shard.buffer) >= self.mapping.batch_size or shard.iterator is None:
            return
        try:
            response = self.kinesis.get_records(
                ShardIterator=shard.iterator,
                Limit=max(1, min(10_000, self.mapping.batch_size - len(shard.buffer))),
            )
        except ClientError as e:
            if error_code(e) == EXPIRED_ITERATOR:
                self._position(shard)
                return
            raise TransientError(f"GetRecords on {shard.shard_id}: {e}") from e
        shard.iterator = response.get("NextShardIterator")
        records = response["Records"]
        if records and shard.buffered_at is None:
            shard.buffered_at = self._clock()
        shard.buffer.extend(records)
        if records:
            shard.last_read = records[-1]["SequenceNumber"]
        shard.behind = bool(records) or int(response.get("MillisBehindLatest", 0)) > 0

    def _batch_size(self, shard: _Shard) -> int:
        return shard.pieces[0] if shard.pieces else self.mapping.batch_size

    def _ready(self, shard: _Shard) -> bool:
        if not shard.buffer:
            return False
        if shard.pieces or shard.attempts:
            return True  # a retry or a bisected piece goes at once
        if len(shard.buffer) >= self.mapping.batch_size or self.mapping.batching_window_s <= 0:
            return True
        assert shard.buffered_at is not None
        return self._clock() - shard.buffered_at >= self.mapping.batching_window_s

    # ------------------------------------------------------------------ delivering
    def _deliver(self, shard: _Shard) -> None:
        self._expire(shard)
        if not shard.buffer:
            return
        batch = self._take(shard)
        first = batch[0]["SequenceNumber"]
        if shard.attempts_at != first:
            shard.attempts, shard.attempts_at = 0, first
        event = {"Records": [self._lambda_record(shard.shard_id, r) for r in batch]}
        with self._shared_lock:
            self.stats.invocations += 1
            self.stats.records_invoked += len(batch)
        outcome = self._invoke(event, batch)
        shard.last_error = _FUNCTION_ERRORS.get(outcome) if outcome is not None else None
        if outcome is None:
            self._succeed(shard, len(batch))
        elif outcome < 0:
            if self.mapping.bisect_on_error and len(batch) > 1:
                # Splitting does not consume the retry quota (Lambda's rule).
                half = len(batch) // 2
                if shard.pieces:
                    shard.pieces.popleft()
                shard.pieces.extendleft([len(batch) - half, half])
                with self._shared_lock:
                    self.stats.bisections += 1
            else:
                self._count_attempt(shard, len(batch))
        else:
            # Partial failure: everything before the lowest failed record is done, and
            # delivery resumes from it (with bisect, only the rest of this batch goes).
            with self._shared_lock:
                self.stats.partial_failures += 1
            self._succeed(shard, outcome, keep_piece=True)
            remaining = len(batch) - outcome
            if self.mapping.bisect_on_error and not shard.pieces:
                shard.pieces.append(remaining)
            shard.attempts_at = batch[outcome]["SequenceNumber"]
            self._count_attempt(shard, remaining)

    def _take(self, shard: _Shard) -> list[dict[str, Any]]:
        size = self._batch_size(shard)
        batch: list[dict[str, Any]] = []
        payload = 0
        for record in shard.buffer:
            cost = (len(record["Data"]) * 4) // 3 + _RECORD_OVERHEAD
            if len(batch) >= size or (batch and payload + cost > MAX_PAYLOAD_BYTES):
                break
            batch.append(record)
            payload += cost
        if shard.pieces and len(batch) < shard.pieces[0]:
            # The payload limit cut the piece: the rest becomes its own piece.
            shard.pieces[0] -= len(batch)
            shard.pieces.appendleft(len(batch))
        return batch

    def _invoke(self, event: dict[str, Any], batch: list[dict[str, Any]]) -> int | None:
        """Run the handler: ``None`` on success, where to resume, or a whole-batch failure
        (``_UNHANDLED``, ``_INVALID_RESPONSE``)."""
        from pipeline.local.invoke import LocalContext

        out = io.StringIO()
        response: Any = None
        error: str | None = None
        context = LocalContext(function_name=self.mapping.function_name)
        with _STDOUT.capture(out):
            try:
                response = self.handler(event, context)
            except Exception:  # noqa: BLE001 - any handler error is a function error
                error = traceback.format_exc()
        with self._shared_lock:
            self._sink(out.getvalue(), error)
            if error is not None:
                self.stats.function_errors += 1
        if error is not None:
            return _UNHANDLED
        if not self.mapping.report_batch_item_failures or response is None:
            return None
        return _resume_index(response, batch)

    def _count_attempt(self, shard: _Shard, count: int) -> None:
        shard.attempts += 1
        limit = self.mapping.maximum_retry_attempts
        if limit < 0 or shard.attempts <= limit:
            return
        batch = list(shard.buffer)[:count]
        with self._shared_lock:
            self.stats.records_retries_exhausted += len(batch)
        self._send_failure(shard, batch, "RetryAttemptsExhausted", shard.attempts)
        self._succeed(shard, count)

    def _expire(self, shard: _Shard) -> None:
        max_age = self.mapping.maximum_record_age_s
        if max_age < 0 or not shard.buffer:
            return
        now = self._wall_clock()
        expired: list[dict[str, Any]] = []
        # Arrival times grow along a shard, so expired records are a prefix.
        for record in shard.buffer:
            if now - _arrival_epoch(record) <= max_age:
                break
            expired.append(record)
        if not expired:
            return
        with self._shared_lock:
            self.stats.records_expired += len(expired)
        self._send_failure(shard, expired, "RecordAgeExceeded", shard.attempts)
        taken = len(expired)
        while taken and shard.pieces:
            cut = min(taken, shard.pieces[0])
            shard.pieces[0] -= cut
            taken -= cut
            if shard.pieces[0] == 0:
                shard.pieces.popleft()
        self._advance(shard, len(expired))

    def _succeed(self, shard: _Shard, count: int, *, keep_piece: bool = False) -> None:
        if shard.pieces and not keep_piece:
            shard.pieces.popleft()
        elif shard.pieces and keep_piece:
            shard.pieces[0] -= count
        self._advance(shard, count)

    def _advance(self, shard: _Shard, count: int) -> None:
        """Checkpoint the first ``count`` buffered records."""
        if count <= 0:
            return
        for _ in range(count - 1):
            shard.buffer.popleft()
        last = shard.buffer.popleft()
        shard.checkpoint = last["SequenceNumber"]
        shard.attempts, shard.attempts_at = 0, None
        shard.buffered_at = self._clock() if shard.buffer else None
        with self._shared_lock:
            self.stats.records_checkpointed += count
            self.stats.checkpoints[shard.shard_id] = shard.checkpoint
            self._save_checkpoints()

    # ------------------------------------------------------------------ shaping
    def _lambda_record(self, shard_id: str, record: dict[str, Any]) -> dict[str, Any]:
        region, account = self.mapping.stream_arn.split(":")[3:5]
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(record["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": _arrival_epoch(record),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{account}:role/{self.mapping.function_name}-role",
            "awsRegion": region,
            "eventSourceARN": self.mapping.stream_arn,
        }

    def failure_record(
        self,
        shard_id: str,
        batch: list[dict[str, Any]],
        condition: str,
        attempts: int,
        function_error: str | None = None,
    ) -> dict[str, Any]:
        """The JSON Lambda sends to an on-failure destination for a skipped batch.

        ``function_error`` is that of the last invocation (None after a partial failure).
        """
        body: dict[str, Any] = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.mapping.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "version": "1.0",
            "timestamp": _iso(self._wall_clock()),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": batch[0]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(_arrival_epoch(batch[0])),
                "approximateArrivalOfLastRecord": _iso(_arrival_epoch(batch[-1])),
                "batchSize": len(batch),
                "streamArn": self.mapping.stream_arn,
            },
        }
        if condition == "RetryAttemptsExhausted":
            body["responseContext"] = {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": function_error or "PartialBatchFailure",
            }
        return body

    def _send_failure(
        self, shard: _Shard, batch: list[dict[str, Any]], condition: str, attempts: int
    ) -> None:
        if not batch or not self.mapping.on_failure_queue_url:
            return
        body = self.failure_record(shard.shard_id, batch, condition, attempts, shard.last_error)
        try:
            self.sqs.send_message(
                QueueUrl=self.mapping.on_failure_queue_url, MessageBody=json.dumps(body)
            )
        except (ClientError, BotoCoreError) as e:
            raise TransientError(f"SendMessage to the on-failure destination: {e}") from e
        with self._shared_lock:
            self.stats.failure_messages += 1

    # ------------------------------------------------------------------ output
    def _sink(self, text: str, error: str | None) -> None:
        """Collect one invocation's lags and log its output (called under ``_shared_lock``)."""
        for line in text.splitlines():
            self.stats.lags_ms.extend(_lag_values(line))
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(text)
            if error:
                f.write(error)

    # ------------------------------------------------------------------ checkpoints
    def _load_checkpoints(self) -> dict[str, str]:
        if self.checkpoint_path is None or not self.checkpoint_path.is_file():
            return {}
        body = json.loads(self.checkpoint_path.read_text())
        if body.get("stream_arn") != self.mapping.stream_arn:
            return {}
        shards: dict[str, str] = body.get("shards", {})
        return shards

    def _save_checkpoints(self) -> None:
        """Write the checkpoints (called under ``_shared_lock``)."""
        if self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        body = {"stream_arn": self.mapping.stream_arn, "shards": self.stats.checkpoints}
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True))
        tmp.replace(self.checkpoint_path)


class _StdoutRouter(io.TextIOBase):
    """``sys.stdout`` while invocations run: each thread's writes go to its own buffer.

    Concurrent invocations (one per shard) must not mix their output, which a process-wide
    ``redirect_stdout`` would. Installed while at least one capture is active; a thread
    without one (the caller, or a thread the handler starts) writes to the stream that was
    stdout before. Logging handlers bound to stdout are rebound too: Powertools Logger binds
    ``sys.stdout`` when the handler module is imported, so swapping ``sys.stdout`` alone
    would miss its JSON lines.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._active = 0
        self._previous: TextIO = sys.stdout
        self._rebound: list[tuple[logging.StreamHandler[Any], Any]] = []

    def _target(self) -> TextIO:
        buffer: TextIO | None = getattr(self._local, "buffer", None)
        return self._previous if buffer is None else buffer

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    @contextlib.contextmanager
    def capture(self, buffer: io.StringIO) -> Iterator[None]:
        """Send this thread's stdout to ``buffer`` for the duration."""
        outer = getattr(self._local, "buffer", None)
        self._local.buffer = buffer
        with self._lock:
            if not self._active:
                self._install()
            self._active += 1
        try:
            yield
        finally:
            self._local.buffer = outer
            with self._lock:
                self._active -= 1
                if not self._active:
                    self._uninstall()

    def _install(self) -> None:
        self._previous = sys.stdout
        self._rebound = [
            (handler, handler.setStream(self))
            for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
            if isinstance(logger, logging.Logger)
            for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler)
            and handler.stream in (sys.stdout, sys.__stdout__)
        ]
        sys.stdout = cast("TextIO", self)

    def _uninstall(self) -> None:
        sys.stdout = self._previous
        for handler, stream in self._rebound:
            handler.setStream(stream)
        self._rebound = []


_STDOUT: Final = _StdoutRouter()


def _resume_index(response: Any, batch: list[dict[str, Any]]) -> int | None:
    """Lambda's reading of a partial batch response: where to resume, or ``None`` if done."""
    if not isinstance(response, dict):
        return _INVALID_RESPONSE  # not a valid response: the whole batch failed
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    positions = {r["SequenceNumber"]: i for i, r in enumerate(batch)}
    lowest = len(batch)
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in positions:
            return _INVALID_RESPONSE  # empty, null or unknown identifier: whole batch failed
        lowest = min(lowest, positions[identifier])
    return lowest


def _arrival_epoch(record: dict[str, Any]) -> float:
    arrival = record["ApproximateArrivalTimestamp"]
    if isinstance(arrival, datetime):
        return arrival.timestamp()
    return float(arrival)


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _lag_values(line: str) -> list[float]:
    """``StreamLagMilliseconds`` values in one EMF line (a number or a list of them)."""
    if LAG_METRIC not in line or not line.lstrip().startswith("{"):
        return []
    try:
        doc = json.loads(line)
    except ValueError:
        return []
    if not isinstance(doc, dict) or "_aws" not in doc:
        return []
    value = doc.get(LAG_METRIC)
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, int | float)]
