"""Daily history rows from a source's columns: the mapping, and the checks each row passes.

A history file is one row per SKU x location x day with the units sold that day, and
optionally the day's price, a promotion flag and the end-of-day stock. Its column names are
the source's own; :class:`ColumnMapping` says which is which. :func:`validate` turns a batch
of source rows (CSV read as text, or typed Parquet) into typed history rows and the rows
it refused, each with a reason code and a detail naming the value, column-wise in Arrow:
only refused rows are touched one by one (to say why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.compaction.schema import DEMAND_HISTORY_SCHEMA
from pipeline.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The typed rows of a history import: the ``demand_history`` table's columns before the
#: source column is added.
HISTORY_ROWS: Final = DEMAND_HISTORY_SCHEMA.remove(DEMAND_HISTORY_SCHEMA.get_field_index("source"))
DEFAULT_DATE_FORMAT: Final = "%Y-%m-%d"
#: The identifiers' pattern of the sales event contract (``#`` and ``/`` are key delimiters).
_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
_WHOLE_NUMBER: Final = r"^[+-]?[0-9]+(\.0*)?$"
_NUMBER: Final = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_TRUE: Final = ("true", "t", "yes", "y", "1")
_FALSE: Final = ("false", "f", "no", "n", "0")

# Reason codes of refused rows (the quarantine's ``reason``).
MISSING_SKU: Final = "missing_sku"
INVALID_SKU: Final = "invalid_sku"
MISSING_LOCATION: Final = "missing_location"
INVALID_LOCATION: Final = "invalid_location"
MISSING_DATE: Final = "missing_date"
BAD_DATE: Final = "bad_date"
MISSING_UNITS: Final = "missing_units"
BAD_UNITS: Final = "bad_units"
NEGATIVE_UNITS: Final = "negative_units"
BAD_PRICE: Final = "bad_price"
NEGATIVE_PRICE: Final = "negative_price"
BAD_PROMOTION: Final = "bad_promotion"
BAD_STOCK: Final = "bad_stock"
NEGATIVE_STOCK: Final = "negative_stock"
DUPLICATE_ROW: Final = "duplicate_row"
#: A CSV line with more or fewer fields than the header (its ``row`` is the line number).
MALFORMED_ROW: Final = "malformed_row"


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each field (``None``: the source has no such column)."""

    sku_id: str
    location_id: str
    date: str
    units: str
    price: str | None = None
    promotion: str | None = None
    end_of_day_stock: str | None = None
    #: How a date written as text reads (``strptime`` codes); typed dates need none.
    date_format: str = DEFAULT_DATE_FORMAT

    @classmethod
    def from_options(cls, options: Mapping[str, str | None]) -> ColumnMapping:
        """The mapping from named options (empty values count as not given)."""
        given = {k: v for k, v in options.items() if v}
        missing = [f"--{n}" for n in ("sku_id", "location_id", "date", "units") if n not in given]
        if missing:
            raise InvalidInputError(f"the column mapping needs {', '.join(missing)}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in given.items() if k in names})

    def as_options(self) -> dict[str, str]:
        """The mapping as job arguments (the inverse of :meth:`from_options`)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)}

    @property
    def source_columns(self) -> list[str]:
        """The source columns the mapping reads, each once, in field order."""
        columns = [
            self.sku_id,
            self.location_id,
            self.date,
            self.units,
            self.price,
            self.promotion,
            self.end_of_day_stock,
        ]
        return list(dict.fromkeys(c for c in columns if c is not None))

    def check_columns(self, present: list[str], source: str) -> None:
        """Refuse a source that lacks a mapped column (naming it and what the source has)."""
        absent = [c for c in self.source_columns if c not in present]
        if absent:
            raise InvalidInputError(
                f"{source} has no column {', '.join(map(repr, absent))} "
                f"(its columns: {', '.join(present)})"
            )


@dataclass(frozen=True)
class Refused:
    """One source row the import refused: where it was, why, and its mapped values."""

    row: int
    reason: str
    detail: str
    record: dict[str, Any]

    def as_dict(self, source: str) -> dict[str, Any]:
        return {
            "source": source,
            "row": self.row,
            "reason": self.reason,
            "detail": self.detail,
            "record": self.record,
        }


@dataclass(frozen=True)
class Validated:
    """A batch's typed rows (``HISTORY_ROWS``), their source row numbers, and the rows
    refused."""

    rows: pa.Table
    numbers: pa.Array
    refused: list[Refused]


class _Checks:
    """Reasons assigned column by column: a row keeps the first reason it gets."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reason: list[str | None] = [None] * n
        self.bad = pa.array([False] * n)

    def fail(self, mask: pa.Array | pa.ChunkedArray, reason: str) -> None:
        mask = pc.fill_null(mask, False)
        new = pc.and_(mask, pc.invert(self.bad))
        if not pc.any(new).as_py():
            return
        for i in pc.indices_nonzero(new).to_pylist():
            self.reason[i] = reason
        self.bad = pc.or_(self.bad, mask)


def _text(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A column as trimmed text, empty text as null."""
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    return pc.if_else(pc.equal(text, ""), None, text)


def _identifier(column: pa.Array, checks: _Checks, missing: str, invalid: str) -> pa.Array:
    text = _text(column)
    checks.fail(pc.is_null(text), missing)
    checks.fail(pc.invert(pc.match_substring_regex(text, _ID_PATTERN)), invalid)
    return text


def _dates(column: pa.Array, date_format: str, checks: _Checks) -> pa.Array:
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        days = pc.cast(column, pa.date32())
        checks.fail(pc.is_null(days), MISSING_DATE)
        return days
    text = _text(column)
    checks.fail(pc.is_null(text), MISSING_DATE)
    parsed = pc.strptime(text, format=date_format, unit="s", error_is_null=True)
    # Arrow's strptime rolls an impossible day over (2024-02-30 reads as 2024-03-01): a date
    # that does not print back as written is read again by Python's, which refuses those
    # (and accepts what only differs in padding, such as 2024-1-2).
    printed = pc.strftime(parsed, format=date_format)
    odd = pc.fill_null(pc.not_equal(printed, text), False)
    if pc.any(odd).as_py():
        values = parsed.to_pylist()
        for i in pc.indices_nonzero(odd).to_pylist():
            values[i] = _python_date(text[i].as_py(), date_format)
        parsed = pa.array(values, pa.timestamp("s"))
    checks.fail(pc.and_(pc.is_valid(text), pc.is_null(parsed)), BAD_DATE)
    return pc.cast(parsed, pa.date32())


def _python_date(text: str, date_format: str) -> datetime | None:
    try:
        return datetime.strptime(text, date_format)  # noqa: DTZ007 - a calendar day
    except ValueError:
        return None


def _whole_numbers(
    column: pa.Array, checks: _Checks, *, bad: str, negative: str, missing: str | None = None
) -> pa.Array:
    """An int64 column (nulls where refused or absent); ``missing``: a null is refused."""
    if pa.types.is_integer(column.type):
        values = pc.cast(column, pa.int64())
    elif pa.types.is_floating(column.type):
        finite = pc.is_finite(column)
        whole = pc.and_(finite, pc.equal(pc.floor(column), column))
        checks.fail(pc.and_(pc.is_valid(column), pc.invert(whole)), bad)
        values = pc.cast(pc.if_else(whole, column, None), pa.int64())
    else:
        text = _text(column)
        ok = pc.match_substring_regex(text, _WHOLE_NUMBER)
        checks.fail(pc.and_(pc.is_valid(text), pc.invert(ok)), bad)
        number = pc.replace_substring_regex(pc.if_else(ok, text, None), r"\.0*$", "")
        # Eighteen digits always fit an int64; anything longer is refused as not a number.
        fits = pc.less_equal(pc.utf8_length(pc.replace_substring(number, "-", "")), 19)
        checks.fail(pc.and_(pc.is_valid(number), pc.invert(fits)), bad)
        values = pc.cast(pc.if_else(fits, number, None), pa.int64())
    if missing is not None:
        checks.fail(pc.is_null(column if pa.types.is_integer(column.type) else values), missing)
    checks.fail(pc.less(values, 0), negative)
    return values


def _prices(column: pa.Array, checks: _Checks) -> pa.Array:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = pc.cast(column, pa.float64())
    else:
        text = _text(column)
        ok = pc.match_substring_regex(text, _NUMBER)
        checks.fail(pc.and_(pc.is_valid(text), pc.invert(ok)), BAD_PRICE)
        values = pc.cast(pc.if_else(ok, text, None), pa.float64())
    checks.fail(pc.and_(pc.is_valid(values), pc.invert(pc.is_finite(values))), BAD_PRICE)
    checks.fail(pc.less(values, 0.0), NEGATIVE_PRICE)
    return values


def _flags(column: pa.Array, checks: _Checks) -> pa.Array:
    if pa.types.is_boolean(column.type):
        return column
    text = pc.utf8_lower(_text(column))
    true = pc.is_in(text, value_set=pa.array(_TRUE))
    false = pc.is_in(text, value_set=pa.array(_FALSE))
    checks.fail(pc.and_(pc.is_valid(text), pc.invert(pc.or_(true, false))), BAD_PROMOTION)
    return pc.if_else(true, True, pc.if_else(false, False, None))


def _detail(reason: str, mapping: ColumnMapping, record: dict[str, Any]) -> str:
    """What was wrong with the row, naming the source column and its value."""
    field, what = {
        MISSING_SKU: ("sku_id", "is missing"),
        INVALID_SKU: ("sku_id", "is not 1-64 characters of A-Z, a-z, 0-9, _ or -"),
        MISSING_LOCATION: ("location_id", "is missing"),
        INVALID_LOCATION: ("location_id", "is not 1-64 characters of A-Z, a-z, 0-9, _ or -"),
        MISSING_DATE: ("date", "is missing"),
        BAD_DATE: ("date", f"is not a date in the format {mapping.date_format}"),
        MISSING_UNITS: ("units", "is missing"),
        BAD_UNITS: ("units", "is not a whole number"),
        NEGATIVE_UNITS: ("units", "is negative"),
        BAD_PRICE: ("price", "is not a number"),
        NEGATIVE_PRICE: ("price", "is negative"),
        BAD_PROMOTION: ("promotion", "is not one of true/false, yes/no, 1/0"),
        BAD_STOCK: ("end_of_day_stock", "is not a whole number"),
        NEGATIVE_STOCK: ("end_of_day_stock", "is negative"),
    }[reason]
    column = getattr(mapping, field)
    value = record.get(column)
    if what == "is missing":
        return f"{field} (column {column!r}) {what}"
    return f"{field} {_shown(value)} (column {column!r}) {what}"


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value)


def validate(batch: pa.Table | pa.RecordBatch, mapping: ColumnMapping, first_row: int) -> Validated:
    """The batch's valid rows as ``HISTORY_ROWS`` and its refused rows with their reasons.

    ``first_row`` is the source row number (1-based) of the batch's first row. A row is
    refused for the first of: a missing or malformed SKU or location, a missing date or
    one that does not read in ``mapping.date_format``, missing, fractional or negative
    units, a price that is not a finite number or is negative, a promotion flag that is
    not one, a fractional or negative stock. Duplicates are found later, per day
    (:func:`first_of_each_key`).
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    table = table.combine_chunks()
    checks = _Checks(table.num_rows)

    def column(name: str | None) -> pa.Array | None:
        return None if name is None else table.column(name).chunk(0) if table.num_rows else None

    n = table.num_rows
    if n == 0:
        return Validated(HISTORY_ROWS.empty_table(), pa.array([], pa.int64()), [])
    sku = _identifier(column(mapping.sku_id), checks, MISSING_SKU, INVALID_SKU)
    location = _identifier(column(mapping.location_id), checks, MISSING_LOCATION, INVALID_LOCATION)
    days = _dates(column(mapping.date), mapping.date_format, checks)
    units = _whole_numbers(
        column(mapping.units),
        checks,
        bad=BAD_UNITS,
        negative=NEGATIVE_UNITS,
        missing=MISSING_UNITS,
    )
    price_column = column(mapping.price)
    price = pa.nulls(n, pa.float64()) if price_column is None else _prices(price_column, checks)
    flag_column = column(mapping.promotion)
    promotion = pa.nulls(n, pa.bool_()) if flag_column is None else _flags(flag_column, checks)
    stock_column = column(mapping.end_of_day_stock)
    stock = (
        pa.nulls(n, pa.int64())
        if stock_column is None
        else _whole_numbers(stock_column, checks, bad=BAD_STOCK, negative=NEGATIVE_STOCK)
    )
    rows = pa.table([sku, location, days, units, stock, price, promotion], schema=HISTORY_ROWS)
    numbers = pa.array(range(first_row, first_row + n), pa.int64())
    if not pc.any(checks.bad).as_py():
        return Validated(rows, numbers, [])
    bad_rows = pc.indices_nonzero(checks.bad)
    originals = table.select(mapping.source_columns).take(bad_rows).to_pylist()
    refused = []
    for index, original in zip(bad_rows.to_pylist(), originals, strict=True):
        reason = checks.reason[index]
        assert reason is not None  # noqa: S101 - every bad row was given one
        record = {k: _plain(v) for k, v in original.items()}
        refused.append(
            Refused(first_row + index, reason, _detail(reason, mapping, original), record)
        )
    good = pc.invert(checks.bad)
    return Validated(rows.filter(good), numbers.filter(good), refused)


def _plain(value: Any) -> Any:
    """A source value as JSON can hold it (dates as ISO text, non-finite floats as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def first_of_each_key(rows: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``rows`` (one day's) with the first row of each (sku_id, location_id) kept, and the
    later duplicates (in source order)."""
    if rows.num_rows == 0:
        return rows, rows
    numbered = rows.append_column("_n", pa.array(range(rows.num_rows), pa.int64()))
    first = numbered.group_by(["sku_id", "location_id"], use_threads=False).aggregate(
        [("_n", "min")]
    )
    keep = pc.is_in(numbered.column("_n"), value_set=first.column("_n_min"))
    return rows.filter(keep), rows.filter(pc.invert(keep))
