"""Sales event v1: validation at the edge and the typed model.

Validation runs the published JSON Schema (compiled once by fastjsonschema) and then the
checks a schema cannot express: a real calendar date, an offset on ``event_time``, and ids
without control characters or a trailing newline (JSON Schema ``$`` lets one through).
Every rejection is a :class:`~pipeline.errors.RejectedRecord` with a stable reason code.

The compiled schema costs ~25 us an event (it builds key sets and raises and catches an
exception per event for the ``if``/``then`` rule), most of the stream consumer's time. So
:func:`validate_event` first tries :func:`accept_plain`, plain Python checks of the common
valid shape whose bounds and patterns are read from the published schema; it can only
accept. Anything it does not accept goes through :func:`validate_with_schema`, which alone
decides rejections and their messages. Decoding likewise: :func:`parse_plain` (orjson,
then :func:`accept_plain`) returns what :func:`parse_event` would for a plainly valid
record and None for anything else, which ``json.loads`` and the reference validation then
decide. Property tests hold the fast paths to agreement
(tests/property/test_contract_agreement.py, tests/property/test_contract_fast_path.py).
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
import orjson
from fastjsonschema.draft04 import CodeGeneratorDraft04

from pipeline.errors import RejectedRecord
from pipeline.strict_json import STRICT_JSON

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


class _UnfrozenSalesEvent:
    """SalesEvent's very slots without its frozen ``__setattr__``, to build one cheaply.

    A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__``
    (1.2 us an event on the hot path); plain slot stores here cost a fifth of that, and the
    instance then becomes a :class:`SalesEvent` by ``__class__`` assignment, which CPython
    allows between classes of one layout (same base, same slots).
    """

    __slots__ = SalesEvent.__slots__

    def __init__(  # noqa: PLR0913, PLR0917 - the model's fields, in its order
        self,
        event_id: str,
        event_type: str,  # one of EVENT_TYPES: accept_plain checks it first
        sku_id: str,
        location_id: str,
        quantity: int,
        event_time: datetime,
        stock_on_hand: int | None,
        unit_price: float | None,
    ) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.sku_id = sku_id
        self.location_id = location_id
        self.quantity = quantity
        self.event_time = event_time
        self.stock_on_hand = stock_on_hand
        self.unit_price = unit_price


def load_schema() -> dict[str, Any]:
    """The published JSON Schema of sales event v1."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


@cache
def _compiled_validator() -> Any:
    return fastjsonschema.compile(load_schema())


# orjson (the fast path) refuses non-finite numbers by itself; the slow path's decoder is
# pipeline.strict_json's, shared with compaction.
_DECODER: Final = STRICT_JSON
_BOM: Final = "\ufeff"
#: Nesting depth stays under half of this, far below json.loads' recursion limit (about
#: 1,000 levels less the caller's stack).
_ORJSON_MAX_BYTES: Final = 1024
_DIGITS_AS_ZERO: Final = bytes.maketrans(b"0123456789", b"0" * 10)
#: 2**63 has 19 digits; shorter integers are within the 64 bits orjson keeps exact.
_LONG_DIGIT_RUN: Final = b"0" * 19


def parse_event(data: bytes, *, now: datetime | None = None) -> tuple[SalesEvent, dict[str, Any]]:
    """Decode one record's bytes into a validated event and the original JSON object.

    Raises :class:`RejectedRecord` with the reason code for anything that breaks the
    contract; the caller quarantines it.
    """
    now = now or datetime.now(UTC)
    plain = parse_plain(data, now)
    if plain is not None:
        return plain
    if len(data) > MAX_RECORD_BYTES:
        raise RejectedRecord("record_too_large", f"{len(data)} bytes > {MAX_RECORD_BYTES}")
    obj = _loads(data)
    return validate_event(obj, now=now), obj


def parse_plain(data: bytes, now: datetime) -> tuple[SalesEvent, dict[str, Any]] | None:
    """What :func:`parse_event` returns for ``data`` if it is plainly valid, else None.

    None is never a rejection, only "ask parse_event", which alone decides rejections
    and their reasons. An object returned here was decoded by orjson, so it holds no
    non-finite float, lone surrogate or integer beyond 64 bits: ``orjson.dumps`` writes
    back exactly its values.

    orjson decodes what it accepts as ``json.loads`` does, with two exceptions ruled out
    here: nesting that json.loads refuses at its recursion limit (a document under
    :data:`_ORJSON_MAX_BYTES` nests less than half as deep) and integers beyond 64 bits,
    which orjson turns into floats. The contract's own fields cannot hold such a float
    once :func:`accept_plain` accepts them (exact ints within bounds; a price that large
    is out of bounds), so the digit scan runs only for objects with unknown fields.
    """
    if len(data) >= _ORJSON_MAX_BYTES:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    event = accept_plain(obj, now)
    if event is None:
        return None
    contract_fields = 6 + (event.stock_on_hand is not None) + (event.unit_price is not None)
    if len(obj) > contract_fields and _LONG_DIGIT_RUN in data.translate(_DIGITS_AS_ZERO):
        return None
    return event, obj


def _loads(data: bytes) -> Any:
    """``json.loads(data)`` with non-finite numbers (``NaN``, ``Infinity``, ``1e400``)
    refused, its errors as rejections."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RejectedRecord("invalid_utf8", str(e)) from e
    try:
        if text.startswith(_BOM):
            # json.loads' own check (JSONDecoder.decode lacks it), with its message.
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except RejectedRecord:
        raise
    except (ValueError, RecursionError) as e:
        raise RejectedRecord("invalid_json", str(e)[:200]) from e


def validate_event(obj: Any, *, now: datetime | None = None) -> SalesEvent:
    """Validate a decoded JSON value against the contract and build the typed model."""
    if not isinstance(obj, dict):
        raise RejectedRecord("not_an_object", f"got JSON {type(obj).__name__}")
    now = now or datetime.now(UTC)
    return accept_plain(obj, now) or validate_with_schema(obj, now=now)


def validate_with_schema(obj: dict[str, Any], *, now: datetime | None = None) -> SalesEvent:
    """The reference validation: the compiled published schema, then the extra checks.

    Decides every rejection and its reason code and message; :func:`validate_event` calls
    it for whatever :func:`accept_plain` does not accept.
    """
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


def _bounds(field: str) -> tuple[float, float]:
    spec = _PROPERTIES[field]
    return spec["minimum"], spec["maximum"]


def _full_pattern(field: str) -> str:
    # The schema's "^...$" read as a full match, which is what fastjsonschema's "\Z"
    # rewrite and the extra id checks enforce together.
    pattern: str = _PROPERTIES[field]["pattern"]
    return pattern.removeprefix("^").removesuffix("$")


def _text_fields_pattern() -> re.Pattern[str]:
    """One regex for ``f"{event_id}/{sku_id}/{location_id}/{event_time}"``.

    It fully matches exactly when each field fully matches its schema pattern and
    ``event_time`` the very regex fastjsonschema applies for ``"format": "date-time"``:
    none of them admits a "/", so a match has exactly three and they split the fields.
    One regex call instead of four saves a twentieth of the handler's time.
    """
    date_time = CodeGeneratorDraft04.FORMAT_REGEXS["date-time"]
    parts = [_full_pattern(f) for f in ("event_id", "sku_id", "location_id")]
    parts.append(date_time.removeprefix("^").removesuffix("\\Z"))
    if any("/" in part for part in parts):
        raise ValueError("a field pattern admits '/', the separator of the combined regex")
    return re.compile("/".join(parts))


_SCHEMA: Final = load_schema()
_PROPERTIES: Final[dict[str, Any]] = _SCHEMA["properties"]
_PLAIN_TEXT_FIELDS: Final = _text_fields_pattern()
_PLAIN_EVENT_TYPES: Final = frozenset(_PROPERTIES["event_type"]["enum"])
#: The event type whose events must carry stock_on_hand (the schema's if/then).
_STOCK_REQUIRED_FOR: Final = _SCHEMA["if"]["properties"]["event_type"]["const"]
_MIN_QUANTITY, _MAX_QUANTITY = _bounds("quantity")
_MIN_STOCK, _MAX_STOCK = _bounds("stock_on_hand")
_MIN_PRICE, _MAX_PRICE = _bounds("unit_price")
_MISSING: Final[Any] = object()


def accept_plain(obj: dict[str, Any], now: datetime) -> SalesEvent | None:
    """The event if ``obj`` plainly meets the contract, else None (never a rejection).

    Exact types only (``int`` not ``bool`` or a whole ``float``, ``str``), the schema's
    bounds, patterns and required fields, the same date-time regex and parse as the
    schema path. Whatever this leaves out, :func:`validate_with_schema` decides.
    """
    try:
        event_id = obj["event_id"]
        event_type = obj["event_type"]
        sku_id = obj["sku_id"]
        location_id = obj["location_id"]
        quantity = obj["quantity"]
        event_time = obj["event_time"]
    except KeyError:
        return None
    if not (
        type(event_id) is str
        and type(event_type) is str
        and type(sku_id) is str
        and type(location_id) is str
        and type(quantity) is int
        and type(event_time) is str
        and event_type in _PLAIN_EVENT_TYPES
        and _MIN_QUANTITY <= quantity <= _MAX_QUANTITY
        and _PLAIN_TEXT_FIELDS.fullmatch(f"{event_id}/{sku_id}/{location_id}/{event_time}")
    ):
        return None
    stock = obj.get("stock_on_hand", _MISSING)
    if stock is _MISSING:
        if event_type == _STOCK_REQUIRED_FOR:
            return None
        stock = None
    elif type(stock) is not int or not _MIN_STOCK <= stock <= _MAX_STOCK:
        return None
    price = obj.get("unit_price", _MISSING)
    if price is _MISSING:
        price = None
    elif type(price) is float or type(price) is int:
        # NaN fails both comparisons and infinities the bounds, as in the schema path.
        if not _MIN_PRICE <= price <= _MAX_PRICE:
            return None
        price = float(price)
    else:
        return None
    try:
        parsed = datetime.fromisoformat(event_time)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    # Converted before the range check: aware datetimes sharing one tzinfo compare
    # field by field, others through two utcoffset() calls.
    moment = parsed.astimezone(UTC)
    if not MIN_EVENT_TIME <= moment <= now + MAX_CLOCK_SKEW:
        return None
    unfrozen: Any = _UnfrozenSalesEvent(
        event_id, event_type, sku_id, location_id, quantity, moment, stock, price
    )
    unfrozen.__class__ = SalesEvent
    event: SalesEvent = unfrozen  # typing.cast would cost a call an event
    return event


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
