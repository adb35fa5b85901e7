"""Raw NDJSON to typed Arrow rows, with a reason for every row that breaks the types.

The fast path reads a whole raw object with ``pyarrow.json`` against the contract's
explicit schema (unknown fields ignored: they stay in raw) and checks required fields, the
event type and the ``event_time`` offset column-wise. The ingest consumer already
validated every record, so that is the normal case. When anything in an object does not
fit (a value of the wrong type makes Arrow reject the whole block), the object is parsed
again line by line so that only the offending lines go to quarantine, each with a reason.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipeline.compaction.schema import EVENT_TYPES, RAW_SCHEMA, REQUIRED_FIELDS, SALES_SCHEMA
from pipeline.errors import RejectedRecord
from pipeline.strict_json import STRICT_JSON

_PARSE_OPTIONS: Final = pj.ParseOptions(
    explicit_schema=RAW_SCHEMA, unexpected_field_behavior="ignore"
)
#: RFC 3339 requires an offset; Arrow's cast would silently read a naive time as UTC.
_OFFSET: Final = r"(Z|z|[+-]\d\d:\d\d)$"
_OFFSET_RE: Final = re.compile(_OFFSET)
_READ_BLOCK: Final = 16 << 20

_PY_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "event_id": (str,),
    "event_type": (str,),
    "sku_id": (str,),
    "location_id": (str,),
    "quantity": (int,),
    "stock_on_hand": (int,),
    "unit_price": (int, float),
    "event_time": (str,),
}
_TYPE_NAMES: Final = {(str,): "string", (int,): "integer", (int, float): "number"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Rejected:
    """One raw line that cannot become a curated row."""

    line: int
    reason: str
    detail: str
    record: str

    def to_json(self, source: str) -> str:
        """The quarantine line: where it came from, why, and the record as received."""
        return json.dumps(
            {
                "source": source,
                "line": self.line,
                "reason": self.reason,
                "detail": self.detail,
                "record": self.record,
            },
            separators=(",", ":"),
        )


@dataclass
class ParsedObject:
    """The typed rows of one raw object (``SALES_SCHEMA``) and its rejected lines."""

    table: pa.Table
    rejected: list[Rejected] = field(default_factory=list)


class _Reject(Exception):  # noqa: N818 - control flow inside the slow path only
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def parse_raw_object(data: bytes) -> ParsedObject:
    """Parse one raw NDJSON object into typed rows; never raises on bad data."""
    if not data.strip():
        return ParsedObject(SALES_SCHEMA.empty_table())
    try:
        raw = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(block_size=min(max(len(data), 1 << 20), _READ_BLOCK)),
            parse_options=_PARSE_OPTIONS,
        )
        table = _typed(raw)
    except (pa.ArrowInvalid, pa.ArrowTypeError, _Reject):
        return _parse_lines(data)
    return ParsedObject(table)


def _typed(raw: pa.Table) -> pa.Table:
    """Check a table read with ``RAW_SCHEMA`` column-wise and convert it to ``SALES_SCHEMA``."""
    for name in REQUIRED_FIELDS:
        if raw.column(name).null_count:
            raise _Reject("missing_field", name)
    if not pc.all(pc.is_in(raw.column("event_type"), value_set=pa.array(EVENT_TYPES))).as_py():
        raise _Reject("invalid_event_type", "")
    for name in ("unit_price",):
        # Arrow's reader takes NaN, Infinity and 1e400 (as inf): the line-by-line path
        # names them with ingest's reasons.
        column = raw.column(name)
        if column.null_count < len(column) and not pc.all(pc.is_finite(column)).as_py():
            raise _Reject("non_finite_number", name)
    times = raw.column("event_time")
    if not pc.all(pc.match_substring_regex(times, _OFFSET)).as_py():
        raise _Reject("invalid_event_time", "")
    utc = pc.cast(times, pa.timestamp("us", tz="UTC"))
    naive = pc.cast(utc, pa.timestamp("us"))
    return raw.set_column(raw.schema.get_field_index("event_time"), "event_time", naive).cast(
        SALES_SCHEMA
    )


def _parse_lines(data: bytes) -> ParsedObject:
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        text = line.decode("utf-8", errors="replace")
        try:
            rows.append(_typed_row(line))
        except _Reject as e:
            rejected.append(Rejected(number, e.reason, e.detail, text))
    table = pa.Table.from_pylist(rows, schema=SALES_SCHEMA) if rows else SALES_SCHEMA.empty_table()
    return ParsedObject(table, rejected)


def _typed_row(line: bytes) -> dict[str, Any]:
    try:
        # Ingest's decoder: NaN, Infinity and 1e400 are refused here as they are there.
        obj = STRICT_JSON.decode(line.decode("utf-8"))
    except RejectedRecord as e:
        raise _Reject(e.reason, e.detail) from e
    except (ValueError, RecursionError) as e:
        raise _Reject("invalid_json", str(e)[:200]) from e
    if not isinstance(obj, dict):
        raise _Reject("not_an_object", f"got JSON {type(obj).__name__}")
    row: dict[str, Any] = {}
    for name, types in _PY_TYPES.items():
        value = obj.get(name)
        if value is None:
            if name in REQUIRED_FIELDS:
                raise _Reject("missing_field", name)
            row[name] = None
            continue
        if isinstance(value, float) and int in types and float not in types:
            # JSON has one number type: 3.0 is the integer 3, 3.5 is not an integer.
            if not value.is_integer():
                raise _Reject("wrong_type", f"{name}: expected integer, got {value!r}")
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, types):
            raise _Reject(
                "wrong_type", f"{name}: expected {_TYPE_NAMES[types]}, got {_json_type(value)}"
            )
        row[name] = value
    for name in ("quantity", "stock_on_hand"):
        if row[name] is not None and not -(2**63) <= row[name] < 2**63:
            raise _Reject("wrong_type", f"{name}: {row[name]} does not fit in 64 bits")
    if row["unit_price"] is not None:
        row["unit_price"] = float(row["unit_price"])
    if row["event_type"] not in EVENT_TYPES:
        raise _Reject("invalid_event_type", repr(row["event_type"])[:100])
    row["event_time"] = _event_time(row["event_time"])
    return row


def _event_time(value: str) -> datetime:
    if not _OFFSET_RE.search(value):
        raise _Reject("invalid_event_time", f"{value!r}: no UTC offset"[:200])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise _Reject("invalid_event_time", f"{value!r}: {e}"[:200]) from e
    return parsed.astimezone(UTC).replace(tzinfo=None)
