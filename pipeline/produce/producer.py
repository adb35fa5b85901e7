"""Put events to Kinesis with PutRecords: within the limits, retrying only what failed, in order.

Ordering. PutRecords can fail some records of a call and accept the others, so if two
records of one partition key travelled in the same call and the first failed, the second
would land ahead of it and the retry would reorder the key. This producer therefore sends
**at most one Kinesis record per ordering unit per call**: the unit is the partition key
without aggregation, and the *shard* with aggregation (an aggregated record holds the
user records of many keys, all of which hash to that shard). Each unit is a FIFO queue; a
call takes the head of up to 500 units; a failed head stays at the front of its queue and
goes again in a later call, after exponential backoff with full jitter, and nothing behind
it in its unit moves before it. Succeeded records are never resent.

Replaying records that already were on the stream (:meth:`Producer.put_records`: a failed
batch from the ingest mapping's on-failure bucket) sends each one as it is, data and
partition key unchanged, under the same ordering rule: by key, or by shard when some of
them are KPL aggregates.

Aggregation uses the KPL aggregated-record format of ``aws_kinesis_agg``. Records are
grouped per shard from ``ListShards`` hash ranges and each aggregate takes the partition
key of its first user record, so it lands on that same shard; the consumer de-aggregates
and sees every user record's own partition key, in order. A reshard while producing can
move keys between shards; the next ``Producer`` reads the new map.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import (
    CALL_FAILED,
    AwsTerminalError,
    AwsTransientError,
    Backoff,
    is_transient_code,
    translate,
)
from pipeline.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_kinesis import KinesisClient

#: Kinesis PutRecords limits: records per call, bytes per call, bytes per record. The
#: record size counts the data blob and the partition key.
MAX_CALL_RECORDS: Final = 500
MAX_CALL_BYTES: Final = 5 * 1024 * 1024
MAX_RECORD_BYTES: Final = 1024 * 1024
MAX_PARTITION_KEY_BYTES: Final = 256


class ProducerRetriesExhausted(AwsTransientError):
    """Some records still failed after ``max_attempts``; ``undelivered`` holds their events.

    The AWS fields (``code``, ``status``, ...) are set when a whole call failed."""

    def __init__(self, message: str, undelivered: list[dict[str, Any]], **fields: Any) -> None:
        super().__init__(message, **fields)
        self.undelivered = undelivered


class ProducerRejected(AwsTerminalError):
    """Kinesis refused the stream or a record for good; ``undelivered`` and fields as above."""

    def __init__(self, message: str, undelivered: list[dict[str, Any]], **fields: Any) -> None:
        super().__init__(message, **fields)
        self.undelivered = undelivered


def partition_key(event: dict[str, Any]) -> str:
    """``"<sku_id>#<location_id>"``: one SKU x location stays on one shard, in order."""
    return f"{event['sku_id']}#{event['location_id']}"


def encode_event(event: dict[str, Any]) -> bytes:
    """The compact JSON bytes of one event (one Kinesis record or one user record)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def hash_key(key: str) -> int:
    """Kinesis' 128-bit hash of a partition key (MD5 as an unsigned integer)."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")  # noqa: S324


@dataclass
class ProduceReport:
    """What one :meth:`Producer.put` delivered and how fast."""

    events: int = 0
    kinesis_records: int = 0
    retried_records: int = 0
    calls: int = 0
    elapsed_s: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def records_per_s(self) -> float:
        return self.kinesis_records / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def records_per_event(self) -> float:
        return self.kinesis_records / self.events if self.events else 0.0

    def merge(self, other: ProduceReport) -> ProduceReport:
        """The sum of two reports (for a producer that puts in many rounds)."""
        return ProduceReport(
            events=self.events + other.events,
            kinesis_records=self.kinesis_records + other.kinesis_records,
            retried_records=self.retried_records + other.retried_records,
            calls=self.calls + other.calls,
            elapsed_s=self.elapsed_s + other.elapsed_s,
        )


@dataclass(slots=True)
class _UserRecord:
    key: str
    data: bytes
    event: dict[str, Any]
    attempts: int = 0


@dataclass(slots=True)
class _Entry:
    unit: str
    count: int
    record: dict[str, Any]
    size: int


@dataclass
class _Shard:
    shard_id: str
    start: int
    end: int


@dataclass
class Producer:
    """Puts sales events to one Kinesis stream (see the module docstring for the guarantees).

    ``max_attempts`` bounds how often one record is tried; ``base_backoff_s`` and
    ``max_backoff_s`` shape the exponential backoff with full jitter between rounds that
    retried something. ``sleep`` and ``rng`` are injectable for tests.
    """

    kinesis_client: KinesisClient
    stream_name: str
    aggregate: bool = False
    max_attempts: int = 8
    base_backoff_s: float = 0.05
    max_backoff_s: float = 5.0
    rng: random.Random | None = None
    sleep: Callable[[float], None] = time.sleep
    _shards: list[_Shard] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._backoff = Backoff(
            base_s=self.base_backoff_s,
            cap_s=self.max_backoff_s,
            jitter="full",
            rng=self.rng or random.Random(),
            sleep=self.sleep,
        )

    # ---------------------------------------------------------------- public
    def put(self, events: Iterable[dict[str, Any]]) -> ProduceReport:
        """Deliver every event, or raise with the ones that were not delivered.

        Raises :class:`ProducerRejected` (terminal: unknown stream, access, a record over
        1 MiB) or :class:`ProducerRetriesExhausted` (transient: still throttled after
        ``max_attempts``).
        """
        pending = [_UserRecord(partition_key(e), encode_event(e), e) for e in events]
        return self._deliver(pending, aggregate=self.aggregate)

    def put_records(
        self, records: Iterable[tuple[str, bytes]], *, by_shard: bool = False
    ) -> ProduceReport:
        """Deliver ``(partition key, data)`` records as they are, never re-aggregated.

        Each record is one Kinesis record. ``by_shard`` orders by shard instead of by key,
        as a mix of KPL aggregates (which hold the records of many keys) needs. Errors as
        :meth:`put`; their ``undelivered`` holds PutRecords entries (``PartitionKey``,
        ``Data``) instead of events.
        """
        pending = [_UserRecord(k, d, {"PartitionKey": k, "Data": d}) for k, d in records]
        return self._deliver(pending, aggregate=False, by_shard=by_shard)

    # ---------------------------------------------------------------- internals
    def _deliver(
        self, pending: list[_UserRecord], *, aggregate: bool, by_shard: bool | None = None
    ) -> ProduceReport:
        started = time.perf_counter()
        units = self._enqueue(pending, by_shard=aggregate if by_shard is None else by_shard)
        report = ProduceReport()
        while units:
            entries = self._next_call(units, aggregate=aggregate)
            failed = self._send(entries, units, report)
            if failed:
                worst = max(failed)
                if worst >= self.max_attempts:
                    undelivered = [r.event for q in units.values() for r in q]
                    raise ProducerRetriesExhausted(
                        f"{len(undelivered)} events not delivered to {self.stream_name}: "
                        f"records still failing after {self.max_attempts} attempts",
                        undelivered,
                    )
                self._backoff.wait(worst)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _enqueue(
        self, pending: list[_UserRecord], *, by_shard: bool
    ) -> dict[str, deque[_UserRecord]]:
        units: dict[str, deque[_UserRecord]] = {}
        for record in pending:
            size = len(record.data) + len(record.key.encode("utf-8"))
            if size > MAX_RECORD_BYTES:
                what = (
                    f"event {record.event['event_id']!r}"
                    if "event_id" in record.event
                    else f"a record of key {record.key!r}"
                )
                raise ProducerRejected(
                    f"{what} is {size} bytes with its partition key; Kinesis takes at "
                    f"most {MAX_RECORD_BYTES}",
                    [r.event for r in pending],
                )
            unit = self._unit_of(record.key) if by_shard else record.key
            units.setdefault(unit, deque()).append(record)
        return units

    def _unit_of(self, key: str) -> str:
        shards = self._shard_map()
        value = hash_key(key)
        for shard in shards:
            if shard.start <= value <= shard.end:
                return shard.shard_id
        raise ProducerRejected(f"no open shard of {self.stream_name} covers key {key!r}", [])

    def _shard_map(self) -> list[_Shard]:
        if self._shards is None:
            shards: list[_Shard] = []
            kwargs: dict[str, Any] = {"StreamName": self.stream_name}
            try:
                while True:
                    page = self.kinesis_client.list_shards(**kwargs)
                    for s in page["Shards"]:
                        if "EndingSequenceNumber" in s["SequenceNumberRange"]:
                            continue  # closed by a reshard: takes no new records
                        ranges = s["HashKeyRange"]
                        shards.append(
                            _Shard(
                                s["ShardId"],
                                int(ranges["StartingHashKey"]),
                                int(ranges["EndingHashKey"]),
                            )
                        )
                    if not page.get("NextToken"):
                        break
                    kwargs = {"NextToken": page["NextToken"]}
            except (ClientError, BotoCoreError) as e:
                raise self._translate(e, "ListShards", []) from e
            self._shards = shards
        return self._shards

    def _next_call(self, units: dict[str, deque[_UserRecord]], *, aggregate: bool) -> list[_Entry]:
        entries: list[_Entry] = []
        call_bytes = 0
        for unit, queue in units.items():
            if len(entries) == MAX_CALL_RECORDS or MAX_CALL_BYTES - call_bytes < 64:
                break
            budget = MAX_CALL_BYTES - call_bytes
            entry = (
                self._aggregate_head(unit, queue, budget)
                if aggregate
                else self._plain_head(unit, queue, budget)
            )
            if entry is None:
                continue
            entries.append(entry)
            call_bytes += entry.size
        return entries

    @staticmethod
    def _plain_head(unit: str, queue: deque[_UserRecord], budget: int) -> _Entry | None:
        head = queue[0]
        size = len(head.data) + len(head.key.encode("utf-8"))
        if size > budget:
            return None
        return _Entry(unit, 1, {"Data": head.data, "PartitionKey": head.key}, size)

    def _aggregate_head(self, unit: str, queue: deque[_UserRecord], budget: int) -> _Entry | None:
        from aws_kinesis_agg.aggregator import AggRecord

        # The record limit counts the aggregate's partition key (that of its first record).
        limit = min(MAX_RECORD_BYTES, budget) - MAX_PARTITION_KEY_BYTES
        agg = AggRecord(max_size=max(limit, 1))
        count = 0
        for record in queue:
            try:
                if not agg.add_user_record(record.key, record.data):
                    break
            except ValueError:
                break  # this user record alone does not fit an aggregate of this size
            count += 1
        if count == 0:
            # Too big to aggregate: KPL sends such a record as a plain record, and so do we.
            return self._plain_head(unit, queue, budget)
        key, _, data = agg.get_contents()
        return _Entry(
            unit, count, {"Data": data, "PartitionKey": key}, len(data) + len(key.encode())
        )

    def _send(
        self,
        entries: list[_Entry],
        units: dict[str, deque[_UserRecord]],
        report: ProduceReport,
    ) -> list[int]:
        """One PutRecords call; returns the attempt counts of the records that failed."""
        report.calls += 1
        try:
            records: Any = [e.record for e in entries]
            response = self.kinesis_client.put_records(StreamName=self.stream_name, Records=records)
        except (ClientError, BotoCoreError) as e:
            error = self._translate(e, "PutRecords", [r.event for q in units.values() for r in q])
            if isinstance(error, TerminalError):
                raise error from e
            results: list[dict[str, Any]] = [{"ErrorCode": CALL_FAILED}] * len(entries)
        else:
            results = [dict(r) for r in response["Records"]]
        failed: list[int] = []
        for entry, result in zip(entries, results, strict=True):
            queue = units.get(entry.unit)
            if queue is None:
                continue  # unreachable: one entry per unit per call
            code = result.get("ErrorCode")
            if code is None:
                for _ in range(entry.count):
                    queue.popleft()
                # Served units go to the back, so the next call takes the oldest heads
                # first (round robin) instead of draining the first 500 keys.
                del units[entry.unit]
                if queue:
                    units[entry.unit] = queue
                report.events += entry.count
                report.kinesis_records += 1
                continue
            if code != CALL_FAILED and not is_transient_code(code):
                raise ProducerRejected(
                    f"PutRecords rejected a record of {entry.record['PartitionKey']!r}: "
                    f"{code}: {result.get('ErrorMessage', '')}",
                    [r.event for q in units.values() for r in q],
                )
            report.retried_records += 1
            for record in itertools.islice(queue, entry.count):
                record.attempts += 1
            failed.append(queue[0].attempts)
        return failed

    def _translate(
        self, error: ClientError | BotoCoreError, action: str, undelivered: list[dict[str, Any]]
    ) -> ProducerRetriesExhausted | ProducerRejected:
        """The producer's error for a failed call, by the rule of :mod:`pipeline.aws_errors`."""
        aws = translate(error, action, service="kinesis", resource=self.stream_name)
        message = f"{aws}: {aws.aws_message}" if isinstance(error, ClientError) else str(aws)
        cls = ProducerRejected if isinstance(aws, TerminalError) else ProducerRetriesExhausted
        return cls(
            message,
            undelivered,
            service=aws.service,
            operation=aws.operation,
            code=aws.code,
            status=aws.status,
            resource=aws.resource,
            aws_message=aws.aws_message,
        )
