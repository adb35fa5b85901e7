"""Property: the forecast job on Spark publishes what the single-process job publishes.

The same generated daily demand (series launched on different days, stockouts, zeros,
locations in different zones, a run while the last day is still in progress at some of
them) goes into two fresh lakes, each with its own forecast table. A backfill then a run on
each path, with chunks and a calibration sample small enough that several chunks and a
sampled calibration are exercised: the DynamoDB items and the archived forecasts must be
identical (the archive read through the ``forecasts`` table), and ForecastBias equal.

One generated draw is all the budget allows (each example is four forecast runs, two of
them on Spark: ~50 s of CPU; CI's derandomized draw is a simple case, one chunk with
every series calibrating, in LA and Tokyo in the evening), so pinned examples reach the
cases by name, and each asserts that it did (the run's report says how many chunks ran
and how many series calibrated the intervals): several chunks
with a sampled calibration in Los Angeles and Tokyo in the evening (30 June over only in
Tokyo), several chunks in the morning (30 June still in progress in Los Angeles), and an
evening at UTC. ``--hypothesis-show-statistics`` counts the examples that reached each case.

The generated histories (at most 45 days) are too short for the global model, so a second,
fixed case has 280 days, a declared calendar (an event, past and planned closures), selling
prices with past and planned promotions, and two chunks: the global model trains on both
paths (with the relative price) and their items and archive are identical.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA
from pipeline.forecasting.forecaster import ForecasterConfig
from pipeline.forecasting.global_model import GlobalModelConfig, Plan
from pipeline.forecasting.job import run_forecast
from pipeline.lake.tables import DAILY_DEMAND, ensure_table, iceberg_catalog, with_partition_columns
from pipeline.spark.forecasting import run_forecast_spark
from tests.support.compaction_lake import Lake, fresh_lake, table_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pipeline.local.stack import LocalStack

END = date(2024, 6, 30)
NOW = datetime(2024, 7, 1, 6, tzinfo=UTC)
#: 30 June is over in Tokyo, in progress at UTC and in Los Angeles.
EVENING = datetime(2024, 6, 30, 20, tzinfo=UTC)
#: The locations table of a lake (``None``: no table, every location at UTC) and when
#: the run after the backfill runs, by name.
ZONES = {"LOC-0": "America/Los_Angeles", "LOC-1": "Asia/Tokyo"}
PLACES = {
    "UTC, morning": (None, NOW),
    "LA and Tokyo, morning (30 June in progress in LA)": (ZONES, NOW),
    "LA and Tokyo, evening (30 June over only in Tokyo)": (ZONES, EVENING),
    "UTC, evening (30 June in progress)": (None, EVENING),
}
LEVELS = [0.0, 0.3, 2.0, 9.0]
HORIZON = 7
#: Both engines' runs are given the same run id (and the same ``now``), so their items are
#: equal by construction, ``run_id`` and ``generated_at`` included: the comparison then also
#: proves that both engines stamp every item, and stamp it alike.
RUN_ID = "jr_agreement"
_SESSIONS: dict[str, Any] = {}


@st.composite
def demand(draw: st.DrawFn) -> dict[date, list[dict[str, Any]]]:
    days = draw(st.integers(20, 45))
    by_day: dict[date, list[dict[str, Any]]] = {}
    for s in range(draw(st.integers(1, 9))):
        launch = draw(st.integers(0, days - 1))
        level = draw(st.sampled_from(LEVELS))
        for t in range(launch, days):
            day = END - timedelta(days=days - 1 - t)
            stock = draw(st.integers(0, 3)) if draw(st.booleans()) else 5
            by_day.setdefault(day, []).append(
                {
                    "sku_id": f"SKU-{s % 4}",
                    "location_id": f"LOC-{s // 4}",
                    "date": day,
                    "units_sold": int(level * ((t * 7 + s) % 5) / 2),
                    "units_returned": 0,
                    "end_of_day_stock": stock,
                    "stockout": stock == 0,
                }
            )
    return by_day


def _pinned_demand(series: int, days: int = 30) -> dict[date, list[dict[str, Any]]]:
    """What :func:`demand` draws, fixed: ``series`` series (four a location), launched
    three days apart (the last on the last day, so it has no finished history), at every
    level, with stockouts and zeros."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for s in range(series):
        launch = days - 1 if s == series - 1 else 3 * s
        for t in range(launch, days):
            day = END - timedelta(days=days - 1 - t)
            stock = 0 if (t + s) % 6 == 0 else 5
            by_day.setdefault(day, []).append(
                {
                    "sku_id": f"SKU-{s % 4}",
                    "location_id": f"LOC-{s // 4}",
                    "date": day,
                    "units_sold": int(LEVELS[s % 4] * ((t * 7 + s) % 5) / 2),
                    "units_returned": 0,
                    "end_of_day_stock": stock,
                    "stockout": stock == 0,
                }
            )
    return by_day


def _put_demand(
    session: Any, lake: Lake, by_day: dict[date, list[dict[str, Any]]], shared: dict[int, str]
) -> None:
    """The demand rows in the lake's ``daily_demand`` table: appended in one commit the first
    time, then the same table registered in the next lake's database (the jobs only read it,
    so the lakes share its files; a day a file each, PyIceberg's append of 280 days to the
    emulator takes ~7 s)."""
    catalog = iceberg_catalog(session)
    if id(by_day) in shared:
        catalog.register_table((lake.database, DAILY_DEMAND.name), shared[id(by_day)])
        return
    table = ensure_table(catalog, lake.database, lake.curated, DAILY_DEMAND)
    rows = [row for day in sorted(by_day) for row in by_day[day]]
    table.append(
        with_partition_columns(pa.Table.from_pylist(rows, DAILY_DEMAND_SCHEMA), DAILY_DEMAND)
    )
    shared[id(by_day)] = catalog.load_table((lake.database, DAILY_DEMAND.name)).metadata_location


def _table(stack: LocalStack, session: Any) -> str:
    """A new table with the template's ForecastTable key schema."""
    ddb = session.client("dynamodb")
    spec = ddb.describe_table(TableName=stack.ref("ForecastTable"))["Table"]
    name = f"{stack.stack_name}-{uuid.uuid4().hex[:8]}"
    indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in spec.get("GlobalSecondaryIndexes", [])
    ]
    ddb.create_table(
        TableName=name,
        KeySchema=spec["KeySchema"],
        AttributeDefinitions=spec["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
    )
    return name


def _items(session: Any, table: str) -> dict[tuple[str, str], Any]:
    items = session.resource("dynamodb").Table(table).scan()["Items"]
    return {(i["PK"], i["SK"]): i for i in items}


def _archive(session: Any, lake: Lake) -> list[dict[str, Any]]:
    """The ``forecasts`` table's rows (its current snapshot), by forecast day and series."""
    rows = table_rows(session, lake.database, "forecasts")
    return sorted(rows, key=lambda r: (r["date"], r["sku_id"], r["location_id"]))


SEVERAL_CHUNKS, SAMPLED = "several chunks", "sampled calibration"


@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    by_day=demand(),
    chunk=st.sampled_from([2, 3, 64]),
    calibration=st.sampled_from([2, 64]),
    place=st.sampled_from(sorted(PLACES)),
    reaches=st.just(frozenset[str]()),
)
# Eight series with history in three zones: four chunks, two series calibrate.
@example(
    by_day=_pinned_demand(9),
    chunk=2,
    calibration=2,
    place="LA and Tokyo, evening (30 June over only in Tokyo)",
    reaches=frozenset({SEVERAL_CHUNKS, SAMPLED}),
)
# Five series with history in two zones: two chunks, two series calibrate.
@example(
    by_day=_pinned_demand(6),
    chunk=3,
    calibration=2,
    place="LA and Tokyo, morning (30 June in progress in LA)",
    reaches=frozenset({SEVERAL_CHUNKS, SAMPLED}),
)
# Four series at UTC: two chunks, every series calibrates.
@example(
    by_day=_pinned_demand(5),
    chunk=3,
    calibration=64,
    place="UTC, evening (30 June in progress)",
    reaches=frozenset({SEVERAL_CHUNKS}),
)
def test_given_the_same_demand_when_forecast_on_spark_then_items_and_archive_are_identical(  # noqa: PLR0913 - the drawn case
    stack: LocalStack,
    spark: SparkSession,
    *,
    by_day: dict[date, list[dict[str, Any]]],
    chunk: int,
    calibration: int,
    place: str,
    reaches: frozenset[str],
) -> None:
    zones, now = PLACES[place]
    session = _SESSIONS.setdefault(stack.stack_name, stack.session())
    s3 = session.client("s3")
    config = ForecasterConfig(horizon=HORIZON, chunk_series=chunk, calibration_series=calibration)
    reports = []
    shared: dict[int, str] = {}
    for runner, extra in ((run_forecast, {}), (run_forecast_spark, {"spark": spark})):
        lake = fresh_lake(stack, session)
        _put_demand(session, lake, by_day, shared)
        if zones:
            rows = "".join(f"{k},{v}\n" for k, v in zones.items())
            s3.put_object(
                Bucket=lake.curated,
                Key="reference/locations/l.csv",
                Body=f"location_id,time_zone\n{rows}".encode(),
            )
        table = _table(stack, session)
        common = {
            "curated_bucket": lake.curated,
            "database": lake.database,
            "forecast_table": table,
            "horizon_days": HORIZON,
            "session": session,
            "config": config,
            "run_id": RUN_ID,
            **extra,
        }
        runner(**common, as_of=END - timedelta(days=3))
        report = runner(**common, now=now)
        reports.append((report, _items(session, table), _archive(session, lake)))
    (single, single_items, single_archive), (spark_run, spark_items, spark_archive) = reports

    # The history ends at the latest day over everywhere: at 06:00 UTC on 1 July it is
    # still 30 June in Los Angeles; at 20:00 UTC on 30 June that day is over only in Tokyo.
    over_everywhere = "2024-06-30" if (zones, now) == (None, NOW) else "2024-06-29"
    assert spark_run.last_actual_date == single.last_actual_date == over_everywhere
    assert spark_items == single_items
    assert {(i["run_id"], i["generated_at"]) for i in spark_items.values()} <= {
        (RUN_ID, spark_run.generated_at)
    }
    assert spark_archive == single_archive
    assert (spark_run.series, spark_run.items_written, spark_run.models) == (
        single.series,
        single.items_written,
        single.models,
    )
    if single.forecast_bias_pct is None:
        assert spark_run.forecast_bias_pct is None
    else:
        assert spark_run.forecast_bias_pct == pytest.approx(single.forecast_bias_pct, rel=1e-12)

    # What the case exercised, alike on both engines: chunks of ``chunk`` series (one
    # Spark task each) and every ``stride``-th series calibrating the intervals.
    stride = math.ceil(single.series / calibration)
    assert (
        (spark_run.chunks, spark_run.calibrated_series, spark_run.global_model)
        == (
            single.chunks,
            single.calibrated_series,
            single.global_model,
        )
        == (math.ceil(single.series / chunk), math.ceil(single.series / stride), False)
    )
    several, sampled = single.chunks > 1, single.calibrated_series < single.series
    event(f"place: {place}")
    event(f"chunks: {'several' if several else 'one'}")
    event(f"calibration: {'sampled' if sampled else 'every series'}")
    # A pinned example reaches what it is pinned for, in the zones it names: a series at
    # each zoned location on the day whose end differs between them.
    assert several or SEVERAL_CHUNKS not in reaches
    assert sampled or SAMPLED not in reaches
    if reaches and zones:
        assert set(ZONES) <= {row["location_id"] for row in by_day[END]}


#: Long enough for the global model at this horizon (it needs 204 days with the defaults).
LONG_DAYS = 280
CALENDAR = """
events:
  - name: payday
    days_of_month: [1, 15]
closures:
  - annual: ["12-25"]
    locations: [LOC-1]
  - dates: ["2024-07-04"]
    locations: [LOC-2]
"""
#: Planned promotions over the horizons of the backfill and of the run (the second at
#: every location).
PROMOTIONS = """sku_id,location_id,start_date,end_date,unit_price
SKU-0,LOC-0,2024-07-02,2024-07-05,1.5
SKU-2,,2024-06-28,2024-07-03,2.0
"""


def _long_demand(series: int, *, priced: bool = True) -> dict[date, list[dict[str, Any]]]:
    """Weekly, payday and closure effects at several levels; some later launches and
    stockouts; a regular price per SKU, cut by a fifth one week in nine (demand up by half),
    and no price on a day without a sale (none at all unless ``priced``)."""
    rng = np.random.default_rng(11)
    by_day: dict[date, list[dict[str, Any]]] = {}
    for s in range(series):
        level = rng.gamma(1.5, 3.0)
        launch = int(rng.integers(0, 200)) if s % 5 == 4 else 0
        location = f"LOC-{s % 3}"
        for t in range(launch, LONG_DAYS):
            day = END - timedelta(days=LONG_DAYS - 1 - t)
            rate = level * (1.4 if day.weekday() >= 5 else 1.0) * (1.6 if day.day in (1, 15) else 1)
            regular = 2.0 + 0.5 * (s // 3)
            discounted = (t // 7 + s) % 9 == 0
            rate *= 1.5 if discounted else 1.0
            closed = location == "LOC-1" and (day.month, day.day) == (12, 25)
            stock = 0 if rng.random() < 0.02 else 20
            units = 0 if closed else int(rng.poisson(rate))
            by_day.setdefault(day, []).append(
                {
                    "sku_id": f"SKU-{s // 3}",
                    "location_id": location,
                    "date": day,
                    "units_sold": units,
                    "units_returned": 0,
                    "end_of_day_stock": stock,
                    "stockout": stock == 0,
                    "avg_unit_price": (
                        round(regular * (0.8 if discounted else 1.0), 2)
                        if priced and units
                        else None
                    ),
                }
            )
    return by_day


def test_given_a_history_long_enough_for_the_global_model_when_forecast_on_spark_then_items_and_archive_are_identical(  # noqa: E501
    stack: LocalStack, spark: SparkSession
) -> None:
    session = _SESSIONS.setdefault(stack.stack_name, stack.session())
    s3 = session.client("s3")
    by_day, unpriced = _long_demand(series=30), _long_demand(series=30, priced=False)
    model = GlobalModelConfig(rounds=20, max_rows=20_000)
    config = ForecasterConfig(
        horizon=HORIZON, chunk_series=16, calibration_series=20, global_model=model
    )
    assert Plan.of(LONG_DAYS, HORIZON, model) is not None
    runs = []
    shared: dict[int, str] = {}
    # The two engines each backfill then run; the two controls (no global model, no
    # prices) only run: a run's items do not depend on the archive a backfill writes (only
    # ForecastBias does, compared between the engines).
    for runner, extra, settings_, demand_, backfill in (
        (run_forecast, {}, config, by_day, True),
        (run_forecast_spark, {"spark": spark}, config, by_day, True),
        (run_forecast, {}, replace(config, global_model=None), by_day, False),
        (run_forecast, {}, config, unpriced, False),
    ):
        lake = fresh_lake(stack, session)
        _put_demand(session, lake, demand_, shared)
        s3.put_object(
            Bucket=lake.curated, Key="reference/calendar/events.yaml", Body=CALENDAR.encode()
        )
        if demand_ is by_day:
            s3.put_object(
                Bucket=lake.curated, Key="reference/promotions/p.csv", Body=PROMOTIONS.encode()
            )
        table = _table(stack, session)
        common = {
            "curated_bucket": lake.curated,
            "database": lake.database,
            "forecast_table": table,
            "horizon_days": HORIZON,
            "session": session,
            "config": settings_,
            "run_id": RUN_ID,
            **extra,
        }
        if backfill:
            runner(**common, as_of=END - timedelta(days=3))
        report = runner(**common, now=NOW)
        runs.append((report, _items(session, table), _archive(session, lake)))
    (single, single_items, single_archive), (spark_run, spark_items, spark_archive) = runs[:2]
    blend_alone_items, unpriced_items = runs[2][1], runs[3][1]

    assert spark_items == single_items
    assert spark_archive == single_archive
    assert (spark_run.series, spark_run.items_written, spark_run.models) == (
        single.series,
        single.items_written,
        single.models,
    )
    assert spark_run.forecast_bias_pct == pytest.approx(single.forecast_bias_pct, rel=1e-12)
    # The global model is in these forecasts: without it they differ.
    assert {k: i["forecast_val"] for k, i in blend_alone_items.items()} != {
        k: i["forecast_val"] for k, i in single_items.items()
    }
    # The price is in these forecasts: without prices they differ.
    assert {k: i["forecast_val"] for k, i in unpriced_items.items()} != {
        k: i["forecast_val"] for k, i in single_items.items()
    }
    # The planned closure is forecast 0 on both paths.
    closed = [i for k, i in single_items.items() if k[1] == "LOC#LOC-2#DATE#2024-07-04"]
    assert closed
    assert all(i["forecast_val"] == i["confidence_upper"] == 0 for i in closed)
