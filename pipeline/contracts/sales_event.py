"""Sales event v1: validation at the edge and the typed model.

Validation runs the published JSON Schema (compiled once by fastjsonschema) and then the
checks a schema cannot express: a real calendar date, an offset on ``event_time``, and ids
without control characters or a trailing newline (JSON Schema ``$`` lets one through).
Every rejection is a :class:`~pipeline.errors.RejectedRecord` with a stable reason code.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import fastjsonschema

from pipeline.errors import RejectedRecord

SCHEMA_PATH: Final = Path(__file__).with_name("sales_event_v1.schema.json")
EVENT_TYPES: Final = ("sale", "return", "stock_count")
#: Kinesis' limit for one record's data blob.
MAX_RECORD_BYTES: Final = 1024 * 1024
#: Events stamped further than this in the future are clock errors, not sales.
MAX_CLOCK_SKEW: Final = timedelta(days=1)
#: Events older than this are not sales we can still act on (and break partitioning).
MIN_EVENT_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

EventType = Literal["sale", "return", "stock_count"]


@dataclass(frozen=True, slots=True)
class SalesEvent:
    """One valid sales event. ``extra`` keeps unknown fields so the raw zone loses nothing."""

    event_id: str
    event_type: EventType
    sku_id: str
    location_id: str
    quantity: int
    event_time: datetime
    stock_on_hand: int | None = None
    unit_price: float | None = None

    @property
    def partition_key(self) -> str:
        """The Kinesis partition key: keeps one SKU x location on one shard, in order."""
        return f"{self.sku_id}#{self.location_id}"

    def to_json_dict(self) -> dict[str, Any]:
        """The event as the JSON object of the contract (``event_time`` in RFC 3339)."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "sku_id": self.sku_id,
            "location_id": self.location_id,
            "quantity": self.quantity,
            "event_time": self.event_time.isoformat(),
        }
        if self.stock_on_hand is not None:
            out["stock_on_hand"] = self.stock_on_hand
        if self.unit_price is not None:
            out["unit_price"] = self.unit_price
        return out


def load_schema() -> dict[str, Any]:
    """The published JSON Schema of sales event v1."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


@cache
def _compiled_validator() -> Any:
    return fastjsonschema.compile(load_schema())


def _reject_constant(name: str) -> Any:
    raise RejectedRecord("invalid_json", f"non-finite number {name} is not JSON")


def parse_event(data: bytes, *, now: datetime | None = None) -> tuple[SalesEvent, dict[str, Any]]:
    """Decode one record's bytes into a validated event and the original JSON object.

    Raises :class:`RejectedRecord` with the reason code for anything that breaks the
    contract; the caller quarantines it.
    """
    if len(data) > MAX_RECORD_BYTES:
        raise RejectedRecord("record_too_large", f"{len(data)} bytes > {MAX_RECORD_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RejectedRecord("invalid_utf8", str(e)) from e
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RejectedRecord:
        raise
    except (ValueError, RecursionError) as e:
        raise RejectedRecord("invalid_json", str(e)[:200]) from e
    return validate_event(obj, now=now), obj


def validate_event(obj: Any, *, now: datetime | None = None) -> SalesEvent:
    """Validate a decoded JSON value against the contract and build the typed model."""
    if not isinstance(obj, dict):
        raise RejectedRecord("not_an_object", f"got JSON {type(obj).__name__}")
    try:
        _compiled_validator()(obj)
    except fastjsonschema.JsonSchemaValueException as e:
        field = (e.path[1] if e.path and len(e.path) > 1 else "") or str(e.name)
        reason = "invalid_event_time" if field == "event_time" else "schema_violation"
        raise RejectedRecord(reason, f"{field}: {e.message}"[:300]) from e
    for field, pattern in (
        ("event_id", _EVENT_ID),
        ("sku_id", _ID),
        ("location_id", _ID),
    ):
        if not pattern.fullmatch(obj[field]):
            raise RejectedRecord("schema_violation", f"{field}: must match {pattern.pattern}")
    for field in ("quantity", "stock_on_hand"):
        value = obj.get(field)
        if isinstance(value, float) and not value.is_integer():
            raise RejectedRecord("schema_violation", f"{field}: must be a whole number")
    price = obj.get("unit_price")
    if isinstance(price, float) and not math.isfinite(price):
        raise RejectedRecord("schema_violation", "unit_price: must be finite")
    event_time = _parse_event_time(obj["event_time"], now or datetime.now(UTC))
    stock = obj.get("stock_on_hand")
    return SalesEvent(
        event_id=obj["event_id"],
        event_type=obj["event_type"],
        sku_id=obj["sku_id"],
        location_id=obj["location_id"],
        quantity=int(obj["quantity"]),
        event_time=event_time,
        stock_on_hand=None if stock is None else int(stock),
        unit_price=None if price is None else float(price),
    )


def _parse_event_time(value: str, now: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise RejectedRecord("invalid_event_time", f"{value!r}: {e}") from e
    if parsed.tzinfo is None:
        raise RejectedRecord("invalid_event_time", f"{value!r}: no UTC offset")
    if parsed > now + MAX_CLOCK_SKEW or parsed < MIN_EVENT_TIME:
        raise RejectedRecord("event_time_out_of_range", f"{value!r} is outside the accepted range")
    return parsed.astimezone(UTC)
