"""The ingest core: one batch of stream records in, raw and quarantine objects out.

Shared by the Lambda consumer and the KCL consumer. Bad data never fails a batch: every
record that breaks the contract goes to the quarantine object with its reason code and
raw bytes. A KPL aggregate whose user records are mostly invalid (or too many, see
:data:`~pipeline.ingest.decode.MAX_USER_RECORDS`) goes there whole, as one line with its
raw bytes and ``user_records`` counted, instead of a line per user record: a forged
aggregate then costs the quarantine at most its own size once more. Either way every user
record is delivered or inside a quarantine line, never dropped. Only store failures
propagate (:class:`TransientError` means "retry the whole
batch"), and they propagate before anything is acknowledged: the caller acknowledges the
batch only when this function returns, that is after both puts succeeded.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.contracts import MAX_RECORD_BYTES, parse_event, parse_plain
from pipeline.errors import RejectedRecord
from pipeline.ingest.decode import KPL_MAGIC, TooManyUserRecords, deaggregate
from pipeline.ingest.inventory import observations
from pipeline.lake import ingest_quarantine_key, raw_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pipeline.contracts import SalesEvent
    from pipeline.ingest.inventory import InventoryState
    from pipeline.ingest.records import StreamRecord
    from pipeline.ingest.store import RawStore

_COMPACT = (",", ":")
# json.dumps with separators builds an encoder per call; the lines need only one.
_ENCODER = json.JSONEncoder(separators=_COMPACT)


@dataclass(frozen=True)
class IngestResult:
    """What one batch produced: counts, object keys, lag per valid event, stock-outs."""

    records: int
    events: int
    valid: int
    quarantined: Mapping[str, int]
    raw_keys: tuple[str, ...] = ()
    quarantine_keys: tuple[str, ...] = ()
    lag_ms: tuple[float, ...] = ()
    stockout_count: int | None = None

    @property
    def raw_key(self) -> str | None:
        """The raw object of the batch (a Lambda batch comes from one shard)."""
        return self.raw_keys[0] if self.raw_keys else None

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class _ShardBatch:
    records: list[StreamRecord] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    rejects: list[bytes] = field(default_factory=list)
    arrivals: list[datetime] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def reject(
        self, record: StreamRecord, reason: str, detail: str, user_records: int | None = None
    ) -> None:
        self.rejects.append(quarantine_line(record, reason, detail, user_records))
        self.reasons[reason] += 1


def quarantine_line(
    record: StreamRecord, reason: str, detail: str, user_records: int | None = None
) -> bytes:
    """One NDJSON line of the quarantine object: the reason and everything to replay it.

    ``user_records`` is set on the line of a whole KPL aggregate: how many user records
    its ``data_b64`` holds.
    """
    line: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "sub_sequence": record.sub_sequence,
        "partition_key": record.partition_key,
        "approximate_arrival": record.approximate_arrival.isoformat(),
        "data_b64": base64.b64encode(record.data).decode("ascii"),
    }
    if user_records is not None:
        line["user_records"] = user_records
    return _ENCODER.encode(line).encode("ascii")


def _raw_line(obj: Mapping[str, Any]) -> bytes:
    """One compact, ASCII NDJSON line holding exactly the values of ``obj``."""
    # Re-serialised rather than copied: the raw line then holds exactly what was validated
    # (a duplicate key or a pretty-printed newline in the producer's text cannot smuggle a
    # different value or a broken NDJSON line past validation). ASCII, so lone surrogates
    # that json.loads accepts stay encodable. orjson writes the common line in a fifth of
    # the time; it refuses lone surrogates and integers beyond 64 bits, writes non-ASCII
    # as UTF-8 and non-finite floats as null: those lines are json's.
    try:
        line = orjson.dumps(obj)
    except orjson.JSONEncodeError:
        pass
    else:
        if line.isascii() and b"null" not in line:
            return line
    return _ENCODER.encode(obj).encode("ascii")


def _split(record: StreamRecord, now: datetime, shard: _ShardBatch, valid: list[SalesEvent]) -> int:
    """Validate one Kinesis record's user records into ``shard`` and ``valid``.

    Returns how many events (user records) the record held, valid or not.
    """
    if record.defect is None:  # the common case first: one plainly valid event
        plain = parse_plain(record.data, now)
        if plain is not None:
            event, obj = plain
            line = orjson.dumps(obj)  # exact for what orjson decoded (see parse_plain)
            shard.lines.append(line if line.isascii() else _raw_line(obj))
            shard.arrivals.append(record.approximate_arrival)
            valid.append(event)
            return 1
    else:
        shard.reject(record, record.defect, record.defect_detail)
        return 1
    data = record.data
    if len(data) > MAX_RECORD_BYTES:
        shard.reject(record, "record_too_large", f"{len(data)} bytes > {MAX_RECORD_BYTES}")
        return 1
    if data[:4] == KPL_MAGIC:
        return _split_aggregate(record, now, shard, valid)
    try:
        event, obj = parse_event(data, now=now)
    except RejectedRecord as e:
        shard.reject(record, e.reason, e.detail)
        return 1
    shard.lines.append(_raw_line(obj))
    shard.arrivals.append(record.approximate_arrival)
    valid.append(event)
    return 1


def _split_aggregate(
    record: StreamRecord, now: datetime, shard: _ShardBatch, valid: list[SalesEvent]
) -> int:
    """:func:`_split` for a KPL aggregate: its user records, or the whole of it quarantined.

    Returns how many user records it held (1 if it could not be read at all).
    """
    try:
        user_records = deaggregate(record)
    except TooManyUserRecords as e:
        shard.reject(record, e.reason, e.detail, e.user_records)
        return 1
    except RejectedRecord as e:
        shard.reject(record, e.reason, e.detail)
        return 1
    accepted: list[tuple[StreamRecord, SalesEvent, dict[str, Any]]] = []
    # Reasons only, not the exceptions: a kept exception keeps its traceback's frames.
    rejected: list[tuple[StreamRecord, str, str]] = []
    for user_record in user_records:
        try:
            event, obj = parse_event(user_record.data, now=now)
        except RejectedRecord as e:
            rejected.append((user_record, e.reason, e.detail))
        else:
            accepted.append((user_record, event, obj))
    if 2 * len(rejected) > len(user_records):
        # Mostly invalid: one line with the aggregate's own bytes, which still hold the
        # valid minority too (delivering those as well would duplicate them on replay).
        counts = Counter(reason for _, reason, _ in rejected)
        first, reason, detail = rejected[0]
        summary = (
            f"{len(rejected)} of {len(user_records)} user records invalid ("
            + ", ".join(f"{r} {n}" for r, n in counts.most_common())
            + f"); first, user record {first.sub_sequence}: {reason}: {detail}"
        )
        shard.reject(record, "kpl_mostly_invalid", summary[:300], len(user_records))
        return len(user_records)
    for user_record, reason, detail in rejected:
        shard.reject(user_record, reason, detail)
    for user_record, event, obj in accepted:
        shard.lines.append(_raw_line(obj))
        shard.arrivals.append(user_record.approximate_arrival)
        valid.append(event)
    return len(user_records)


def _store_shards(
    shards: Mapping[str, _ShardBatch], store: RawStore
) -> tuple[list[str], list[str], Counter[str]]:
    """Put each shard's raw and quarantine objects; return their keys and the reasons."""
    reasons: Counter[str] = Counter()
    raw_keys: list[str] = []
    quarantine_keys: list[str] = []
    for shard_id, shard in shards.items():
        first, last = shard.records[0], shard.records[-1]
        key_args = (
            shard_id,
            first.sequence_number,
            last.sequence_number,
            first.approximate_arrival,
        )
        if shard.lines:
            key = raw_key(*key_args)
            store.put(key, b"\n".join(shard.lines) + b"\n")
            raw_keys.append(key)
        if shard.rejects:
            key = ingest_quarantine_key(*key_args)
            store.put(key, b"\n".join(shard.rejects) + b"\n")
            quarantine_keys.append(key)
            reasons.update(shard.reasons)
    return raw_keys, quarantine_keys, reasons


def ingest_batch(
    records: Sequence[StreamRecord],
    *,
    store: RawStore,
    now: datetime | None = None,
    inventory: InventoryState | None = None,
) -> IngestResult:
    """Validate, quarantine and store one batch; return what it produced.

    Valid events of each shard go to one NDJSON object under :func:`pipeline.lake.raw_key`,
    rejected ones to one object under :func:`pipeline.lake.ingest_quarantine_key` (both keys are
    deterministic, so a retried batch overwrites its own objects). ``now`` fixes the clock
    for validation and lag (tests); by default validation uses the start of the batch and
    lag the moment the objects are durable. Store and inventory failures propagate as
    :class:`~pipeline.errors.TransientError` / ``TerminalError``; bad data never does.
    """
    started = now or datetime.now(UTC)
    shards: dict[str, _ShardBatch] = {}
    valid: list[SalesEvent] = []
    events = 0
    for record in records:
        shard = shards.get(record.shard_id)
        if shard is None:  # not setdefault: that would build a _ShardBatch per record
            shard = shards[record.shard_id] = _ShardBatch()
        shard.records.append(record)
        events += _split(record, started, shard, valid)

    observed = observations(valid) if inventory is not None else []
    stockout_count: int | None = None
    if inventory is not None and observed:
        # The inventory update does not depend on the objects (both are idempotent, and the
        # batch is acknowledged only when this function returns, after both): it runs in a
        # second thread while this one writes the objects, so the invocation waits for the
        # slower of the two round trips instead of their sum. Leaving the pool joins the
        # thread, so a failed put never returns while an update is still running.
        with ThreadPoolExecutor(1) as pool:
            update = pool.submit(inventory.apply, observed)
            raw_keys, quarantine_keys, reasons = _store_shards(shards, store)
            durable = now or datetime.now(UTC)
            stockout_count = update.result()
    else:
        raw_keys, quarantine_keys, reasons = _store_shards(shards, store)
        durable = now or datetime.now(UTC)
        if inventory is not None:
            stockout_count = inventory.apply(observed)
    # Records of one aggregate, or put in the same millisecond, share an arrival: each
    # distinct one is subtracted once.
    lag_of: dict[datetime, float] = {}
    lags: list[float] = []
    for shard in shards.values():
        for arrival in shard.arrivals:
            lag = lag_of.get(arrival)
            if lag is None:
                lag = lag_of[arrival] = max(0.0, (durable - arrival).total_seconds() * 1000.0)
            lags.append(lag)
    return IngestResult(
        records=len(records),
        events=events,
        valid=len(valid),
        quarantined=dict(reasons),
        raw_keys=tuple(raw_keys),
        quarantine_keys=tuple(quarantine_keys),
        lag_ms=tuple(lags),
        stockout_count=stockout_count,
    )
