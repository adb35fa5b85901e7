"""A query's rows as text for scripts: CSV, or JSON.

Both print every row, in the result's column order, each value written once the same way:

========================  ==============================  ===========================
value                     CSV                             JSON
========================  ==============================  ===========================
null (NaN, NaT, NA)       empty field                     ``null``
boolean                   ``true`` / ``false``            ``true`` / ``false``
integer, float            its digits (``2.5``)            a number
date                      ``2026-01-02``                  ``"2026-01-02"``
timestamp                 ``2026-01-02 08:00:00``         ``"2026-01-02 08:00:00"``
                          (SQL literal form: fractional
                          seconds when present, the
                          offset when zoned)
infinite float            ``Infinity`` / ``-Infinity``    the same, as a string
binary                    hexadecimal                     hexadecimal string
list, struct              its JSON text                   an array, an object
anything else             its ``str``                     its ``str``, as a string
========================  ==============================  ===========================

**CSV** (RFC 4180): a header line, then one line per row; fields are quoted only when they
hold a comma, a quote or a line break, so a null and an empty string look the same.

**JSON**: one JSON array of objects (column name -> value), one row per line, ``[]`` when
there is no row: a single document for ``json.load`` or ``jq``, still readable line by line.
Non-ASCII characters are escaped (``\\u00e9``), so the output is inert on any terminal.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterator

OutputFormat = Literal["table", "csv", "json"]
#: Every output format; ``table`` is the console's, for people (see the CLI).
FORMATS: Final[tuple[OutputFormat, ...]] = ("table", "csv", "json")


def to_csv(frame: pd.DataFrame) -> str:
    """Every row of ``frame`` as CSV with a header line (see the module docstring)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([str(c) for c in frame.columns])
    for row in _rows(frame):
        writer.writerow(["" if v is None else _csv_text(v) for v in row])
    return out.getvalue()


def to_json(frame: pd.DataFrame) -> str:
    """Every row of ``frame`` as one JSON array of objects, a row per line."""
    names = [str(c) for c in frame.columns]
    lines = [
        json.dumps(dict(zip(names, row, strict=True)), separators=(",", ":"), allow_nan=False)
        for row in _rows(frame)
    ]
    if not lines:
        return "[]\n"
    return "[\n" + ",\n".join(lines) + "\n]\n"


def _rows(frame: pd.DataFrame) -> Iterator[list[Any]]:
    for row in frame.itertuples(index=False, name=None):
        yield [plain(v) for v in row]


def _csv_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return str(value)


def plain(value: Any) -> Any:
    """``value`` (a cell of a DuckDB or awswrangler frame) as ``None``, ``bool``, ``int``,
    ``float``, ``str``, ``list`` or ``dict``, per the module's table."""
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    if isinstance(value, datetime):  # pd.Timestamp too; before date, its base class
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)
