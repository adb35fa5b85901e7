"""Sales events from NDJSON (a retailer's export, a pipe): validated line by line, then produced.

Each line is one event. :func:`read_lines` reads a binary stream lazily, a line at a time
and never more than :data:`MAX_LINE_BYTES` of one line, and validates each against the
contract (:func:`pipeline.contracts.parse_event`, the very check ingest applies): a line is
:class:`Accepted` with its event, :class:`Refused` with its number, the contract's reason
code and detail, or skipped when blank. Reasons are those of ingest's quarantine
(``invalid_json``, ``not_an_object``, ``schema_violation``, ``invalid_event_time``,
``event_time_out_of_range``, ``invalid_utf8``, ``non_finite_number``, ``record_too_large``),
so a line refused here is one ingest would have quarantined.

:func:`send_lines` puts the accepted events with a :class:`~pipeline.produce.Producer`
(PutRecords limits, retry of failed records only, per-key order, optional aggregation) in
batches of at most ``max_events`` events or ``max_bytes`` bytes, one batch delivered
before the next is sent, so the events of one key reach the stream in the order of their
lines. A batch also goes once its first event has waited ``linger_s`` (a slow pipe's events
are not held back for a full batch): lines are read on a thread that hands them over
through a buffer of at most ``max_bytes``, so memory stays bounded whatever the input's
size.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from pipeline.contracts import parse_event
from pipeline.errors import PipelineError, RejectedRecord
from pipeline.produce.producer import (
    MAX_RECORD_BYTES,
    ProduceReport,
    encode_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from pipeline.produce.producer import Producer

#: The longest line read whole: a Kinesis record's limit. A longer line is refused as
#: ``record_too_large`` and the rest of it skipped unread into memory.
MAX_LINE_BYTES: Final = MAX_RECORD_BYTES
#: A batch's bounds and how long its first event may wait for more.
BATCH_EVENTS: Final = 5_000
BATCH_BYTES: Final = 5 * 1024 * 1024
LINGER_S: Final = 0.2
_SKIP_CHUNK: Final = 64 * 1024
#: A byte order mark some exporters write at the start of a file (not of each line).
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A line that meets the contract: its number, the event (the line's JSON object, unknown
    fields kept) and the size of the record it becomes."""

    line: int
    event: dict[str, Any]
    size: int


@dataclass(frozen=True, slots=True)
class Refused:
    """A line that does not: its number, the reason code, the detail and its bytes (None
    when too long to keep)."""

    line: int
    reason: str
    detail: str
    data: bytes | None

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"line {self.line}: {self.reason}{detail}"


def read_lines(stream: BinaryIO, *, now: datetime | None = None) -> Iterator[Accepted | Refused]:
    """Each non-blank line of ``stream`` validated, lazily, numbered from 1.

    A line ends at ``\\n`` (a ``\\r`` before it is dropped too); a line of only whitespace is
    skipped; a UTF-8 byte order mark opening the input is dropped. ``now`` fixes the
    contract's clock (default: the time of each line).
    """
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            length = _skip_rest_of_line(stream, raw)
            detail = f"line of {length} bytes > {MAX_LINE_BYTES}"
            yield Refused(number, "record_too_large", detail, None)
            continue
        line = raw.removesuffix(b"\n").removesuffix(b"\r")
        if number == 1:
            line = line.removeprefix(_BOM)
        if not line.strip():
            continue
        yield _validate(number, line, now)


def _validate(number: int, line: bytes, now: datetime | None) -> Accepted | Refused:
    try:
        event, obj = parse_event(line, now=now)
    except RejectedRecord as e:
        return Refused(number, e.reason, e.detail, line)
    # The record is the event re-encoded compactly (what the producer sends), which may not
    # be the line's own length; Kinesis' limit counts the partition key too.
    size = len(encode_event(obj)) + len(event.partition_key.encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        detail = f"{size} bytes with its partition key > {MAX_RECORD_BYTES}"
        return Refused(number, "record_too_large", detail, line)
    return Accepted(number, obj, size)


def _skip_rest_of_line(stream: BinaryIO, read: bytes) -> int:
    """Read past the rest of a line a chunk at a time; the length of the line (``read``
    and the rest) without its line end."""
    length, last = len(read), read
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        if not chunk:
            return length
        length += len(chunk)
        if chunk.endswith(b"\n"):
            # "\r\n" may straddle two chunks.
            return length - (2 if (last + chunk).endswith(b"\r\n") else 1)
        last = chunk


@dataclass
class LinesReport:
    """What :func:`send_lines` read, refused and delivered."""

    #: The number of the last line that was not blank.
    last_line: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    produced: ProduceReport = field(default_factory=ProduceReport)
    #: Every accepted line up to this one is on the stream.
    delivered_through: int = 0

    @property
    def refused_lines(self) -> int:
        return sum(self.refused.values())


class LinesNotDelivered(PipelineError):
    """The producer failed on a batch (or the run was interrupted); ``report`` says what was
    delivered before it."""

    def __init__(self, error: PipelineError, report: LinesReport) -> None:
        resume = report.delivered_through + 1
        super().__init__(
            f"{error}; every accepted line before line {resume} is on the stream "
            f"({report.produced.events} events): send again from line {resume} "
            "(compaction drops events whose event_id it already has)"
        )
        self.error = error
        self.report = report


def send_lines(  # noqa: PLR0913 - the source, the producer, the report hook and the bounds
    stream: BinaryIO,
    producer: Producer,
    *,
    on_refused: Callable[[Refused], object] = lambda _: None,
    on_batch: Callable[[LinesReport], object] = lambda _: None,
    max_events: int = BATCH_EVENTS,
    max_bytes: int = BATCH_BYTES,
    linger_s: float = LINGER_S,
    now: datetime | None = None,
) -> LinesReport:
    """Validate every line of ``stream`` and put the accepted events, in batches.

    ``on_refused`` is called with each refused line as it is read and ``on_batch`` after
    each delivered batch. A producer failure or an interruption (Ctrl-C) raises
    :class:`LinesNotDelivered`, which says from which line to send again.
    """
    report = LinesReport()
    batch: list[Accepted] = []
    batch_bytes = 0
    deadline = 0.0

    def flush() -> None:
        nonlocal batch, batch_bytes
        if not batch:
            return
        try:
            delivered = producer.put(a.event for a in batch)
        except PipelineError as e:
            report.delivered_through = batch[0].line - 1
            raise LinesNotDelivered(e, report) from e
        report.produced = report.produced.merge(delivered)
        report.delivered_through = batch[-1].line
        batch, batch_bytes = [], 0
        on_batch(report)

    try:
        with _Reader(read_lines(stream, now=now), max_bytes) as reader:
            while True:
                wait = max(0.0, deadline - time.monotonic()) if batch else None
                item = reader.get(wait)
                if item is _Signal.END:
                    break
                if item is _Signal.IDLE:
                    flush()
                    continue
                report.last_line = item.line
                if isinstance(item, Refused):
                    report.refused[item.reason] += 1
                    on_refused(item)
                    continue
                report.accepted += 1
                if not batch:
                    deadline = time.monotonic() + linger_s
                batch.append(item)
                batch_bytes += item.size
                if len(batch) >= max_events or batch_bytes >= max_bytes:
                    flush()
            flush()
    except KeyboardInterrupt as e:  # Ctrl-C on a pipe that does not end: say what is sent
        report.delivered_through = batch[0].line - 1 if batch else report.last_line
        raise LinesNotDelivered(PipelineError("interrupted"), report) from e
    report.delivered_through = max(report.delivered_through, report.last_line)
    return report


class _Signal(enum.Enum):
    END = "the input ended"
    IDLE = "nothing came before the timeout"


class _Reader:
    """Runs a line iterator on a thread and hands its items over, at most ``max_bytes`` of
    them waiting at a time; :meth:`get` waits up to a timeout (None: for ever)."""

    def __init__(self, items: Iterator[Accepted | Refused], max_bytes: int) -> None:
        self._items = items
        self._max_bytes = max_bytes
        self._queue: deque[tuple[Accepted | Refused, int]] = deque()
        self._bytes = 0
        self._done = False
        self._stopped = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ndjson-reader", daemon=True)

    def __enter__(self) -> _Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        # A reader blocked on a pipe that never ends is left to the process' exit (daemon).
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        try:
            for item in self._items:
                size = item.size if isinstance(item, Accepted) else len(item.data or b"")
                with self._cond:
                    while self._bytes and self._bytes + size > self._max_bytes:
                        if self._stopped:
                            return
                        self._cond.wait()
                    if self._stopped:
                        return
                    self._queue.append((item, size))
                    self._bytes += size
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - handed to the consuming thread
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def get(self, timeout: float | None) -> Accepted | Refused | _Signal:
        with self._cond:
            if not self._cond.wait_for(lambda: self._queue or self._done, timeout):
                return _Signal.IDLE
            if self._queue:
                item, size = self._queue.popleft()
                self._bytes -= size
                self._cond.notify_all()
                return item
            if self._error is not None:
                raise self._error
            return _Signal.END
