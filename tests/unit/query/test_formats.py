"""Rows as CSV and JSON for scripts: every row, each value written one documented way."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import duckdb
import pandas as pd

from pipeline.query.formats import to_csv, to_json

#: One row of every kind of value a query returns, then a row of nulls (as DuckDB returns them).
SQL = """
SELECT * FROM (VALUES
  ('SKU-1', 3::BIGINT, 2.5::DOUBLE, true, DATE '2026-01-02',
   TIMESTAMP '2026-01-02 08:30:00', TIMESTAMP '2026-01-02 08:30:00.25', 'a,"b"'),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'Café')
) t(sku_id, units, price, stockout, day, ts, ts_ms, note)
"""


def frame() -> pd.DataFrame:
    return duckdb.connect().execute(SQL).df(date_as_object=True)


def test_given_rows_of_every_type_when_csv_then_header_and_one_line_per_row() -> None:
    assert to_csv(frame()) == (
        "sku_id,units,price,stockout,day,ts,ts_ms,note\n"
        'SKU-1,3,2.5,true,2026-01-02,2026-01-02 08:30:00,2026-01-02 08:30:00.250000,"a,""b"""\n'
        ",,,,,,,Café\n"
    )


def test_given_rows_of_every_type_when_json_then_one_array_a_row_per_line() -> None:
    text = to_json(frame())

    assert text == (
        "[\n"
        '{"sku_id":"SKU-1","units":3,"price":2.5,"stockout":true,"day":"2026-01-02",'
        '"ts":"2026-01-02 08:30:00","ts_ms":"2026-01-02 08:30:00.250000","note":"a,\\"b\\""},\n'
        '{"sku_id":null,"units":null,"price":null,"stockout":null,"day":null,"ts":null,'
        '"ts_ms":null,"note":"Caf\\u00e9"}\n'
        "]\n"
    )
    assert json.loads(text)[1]["note"] == "Café"


def test_given_no_rows_when_formatting_then_a_header_or_an_empty_array() -> None:
    empty = frame().head(0)

    assert to_csv(empty) == "sku_id,units,price,stockout,day,ts,ts_ms,note\n"
    assert to_json(empty) == "[]\n"


def test_given_nested_binary_and_other_values_when_formatting_then_json_shapes_and_text() -> None:
    odd = pd.DataFrame(
        {
            "l": [[1, 2]],
            "s": [{"x": 1.5}],
            "b": [b"\x01\xff"],
            "t": [time(10, 0)],
            "i": [timedelta(days=1)],
            "inf": [float("-inf")],
            "tz": [pd.Timestamp("2026-01-02 08:00", tz="UTC")],
            "d": [date(2026, 1, 2)],
            "dt": [datetime(2026, 1, 2, 8)],
        }
    )

    assert to_json(odd) == (
        '[\n{"l":[1,2],"s":{"x":1.5},"b":"01ff","t":"10:00:00","i":"1 days 00:00:00",'
        '"inf":"-Infinity","tz":"2026-01-02 08:00:00+00:00","d":"2026-01-02",'
        '"dt":"2026-01-02 08:00:00"}\n]\n'
    )
    assert to_csv(odd).splitlines()[1] == (
        '"[1,2]","{""x"":1.5}",01ff,10:00:00,1 days 00:00:00,-Infinity,'
        "2026-01-02 08:00:00+00:00,2026-01-02,2026-01-02 08:00:00"
    )
