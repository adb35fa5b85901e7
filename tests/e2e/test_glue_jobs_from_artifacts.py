"""Both Glue jobs run from their built artifacts, in Glue 5.1's runtime, against the emulator.

raw -> curated -> forecasts in DynamoDB -> ForecastBias in CloudWatch, once through the
artifacts (the script and wheel uploaded to the artifacts bucket, the job's declared
modules only) and once through the in-tree cores on a second stack with the same raw
input: the curated rows (read through the Iceberg tables) and the forecasts must be the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from pipeline.compaction import run_compaction
from pipeline.forecasting.job import run_forecast
from pipeline.lake.tables import TABLES, iceberg_catalog, read_rows
from pipeline.local.glue_runtime import run_glue_job
from pipeline.local.stack import LocalStack
from tests.support.compaction_helpers import event, put_raw, raw_key

if TYPE_CHECKING:
    import boto3

pytestmark = pytest.mark.slow

DAYS = 42
BACKFILL_DAYS = 14


def _raw_events(today: date) -> list[tuple[str, list[dict[str, Any]]]]:
    """One raw object per day: 3 SKUs x 2 stores of seeded sales and a stock reading."""
    rng = np.random.default_rng(11)
    objects = []
    for age in range(DAYS, 0, -1):
        day = today - timedelta(days=age)
        noon = datetime.combine(day, time(12), UTC)
        events = []
        for sku in ("SKU-1", "SKU-2", "SKU-3"):
            for store in ("STORE-1", "STORE-2"):
                for k in range(int(rng.integers(0, 5))):
                    events.append(
                        event(
                            f"{day}-{sku}-{store}-{k}",
                            noon + timedelta(minutes=k),
                            sku=sku,
                            location=store,
                            quantity=int(rng.integers(1, 4)),
                        )
                    )
                events.append(
                    event(
                        f"{day}-{sku}-{store}-stock",
                        noon + timedelta(hours=6),
                        event_type="stock",
                        sku=sku,
                        location=store,
                        quantity=0,
                        stock=int(rng.integers(0, 20)),
                        price=None,
                    )
                )
        objects.append((raw_key(noon, "shardId-000000000000", age, age), events))
    return objects


def _curated(stack: LocalStack, table: str) -> pd.DataFrame:
    """The table's rows (its current snapshot, read through the Iceberg table), in a stable
    order: the engines' data files differ, their rows may not."""
    spec = next(t for t in TABLES if t.name == table)
    catalog = iceberg_catalog(stack.session())
    rows: pd.DataFrame = read_rows(catalog, stack.ref("LakeDatabase"), spec).to_pandas()
    keys = [c for c in ("event_id", "sku_id", "location_id", "date") if c in rows.columns]
    return rows.sort_values(keys).reset_index(drop=True)


def _forecast_items(session: boto3.session.Session, table: str) -> dict[tuple[str, str], Any]:
    items = session.resource("dynamodb").Table(table).scan()["Items"]
    return {
        (i["PK"], i["SK"]): (i["forecast_val"], i["confidence_lower"], i["confidence_upper"])
        for i in items
    }


_IN_TREE: dict[str, tuple[Any, Any]] = {}


def _in_tree(tree: LocalStack) -> tuple[Any, Any]:
    """The in-tree cores on ``tree``: compaction, the backfill, the run (once per stack)."""
    if tree.stack_name not in _IN_TREE:
        backfill = datetime.now(UTC).date() - timedelta(days=BACKFILL_DAYS)
        compacted = run_compaction(
            raw_bucket=tree.ref("RawBucket"),
            curated_bucket=tree.ref("CuratedBucket"),
            database=tree.ref("LakeDatabase"),
            session=tree.session(),
        )
        for as_of in (backfill, None):
            forecasted = run_forecast(
                curated_bucket=tree.ref("CuratedBucket"),
                database=tree.ref("LakeDatabase"),
                forecast_table=tree.ref("ForecastTable"),
                session=tree.session(),
                as_of=as_of,
            )
        _IN_TREE[tree.stack_name] = (compacted, forecasted)
    return _IN_TREE[tree.stack_name]


@pytest.fixture(scope="module")
def stacks(emulator_url: str) -> tuple[LocalStack, LocalStack, LocalStack]:
    """Three stacks with the same raw zone: artifacts, in-tree, artifacts on Spark."""
    today = datetime.now(UTC).date()
    pair = []
    for name in ("art", "tree", "spark"):
        stack = LocalStack.create(emulator_url, stack_name=f"{name}{uuid.uuid4().hex[:8]}")
        s3 = stack.session().client("s3")
        for key, events in _raw_events(today):
            put_raw(s3, stack.ref("RawBucket"), key, events)
        pair.append(stack)
    return pair[0], pair[1], pair[2]


def test_given_the_same_raw_zone_when_jobs_run_from_artifacts_then_results_equal_the_in_tree_run(
    stacks: tuple[LocalStack, LocalStack, LocalStack],
) -> None:
    artifacts, tree, _ = stacks
    today = datetime.now(UTC).date()
    backfill = (today - timedelta(days=BACKFILL_DAYS)).isoformat()

    compacted = run_glue_job(artifacts, "CompactSalesJob")
    run_glue_job(artifacts, "ForecastDemandJob", arguments={"--as_of": backfill})
    started = datetime.now(UTC)
    forecasted = run_glue_job(artifacts, "ForecastDemandJob")
    finished = datetime.now(UTC)

    in_tree, expected = _in_tree(tree)

    assert compacted["rows_written"] == in_tree.rows_written > 0
    for table in ("sales", "daily_demand"):
        pd.testing.assert_frame_equal(_curated(artifacts, table), _curated(tree, table))
    got = _forecast_items(artifacts.session(), artifacts.ref("ForecastTable"))
    want = _forecast_items(tree.session(), tree.ref("ForecastTable"))
    assert len(got) == forecasted["items_written"] == 6 * 28
    assert got == want
    assert forecasted["forecast_bias_pct"] == pytest.approx(expected.forecast_bias_pct)

    metric = {
        "Namespace": "FMCG/Business",
        "MetricName": "ForecastBias",
        "Dimensions": [{"Name": "service", "Value": "forecast"}],
    }
    data = (
        artifacts.session()
        .client("cloudwatch")
        .get_metric_data(
            MetricDataQueries=[
                {"Id": "bias", "MetricStat": {"Metric": metric, "Period": 1, "Stat": "Maximum"}}
            ],
            StartTime=started - timedelta(seconds=1),
            EndTime=finished + timedelta(seconds=1),
        )
    )
    values = data["MetricDataResults"][0]["Values"]
    assert pytest.approx(forecasted["forecast_bias_pct"]) in values


def test_given_the_spark_engine_when_jobs_run_from_artifacts_then_results_equal_the_in_tree_run(
    stacks: tuple[LocalStack, LocalStack, LocalStack],
) -> None:
    """The same, with ``--engine spark``: Spark in local mode inside Glue 5.1's runtime.

    No backfill run here: the items do not depend on the archive it writes (only
    ForecastBias does, compared above), and each Spark run from artifacts starts a JVM;
    the backfill on Spark is compared with the single process in
    tests/property/test_spark_forecast_agreement.py."""
    _, tree, spark = stacks
    engine = {"--engine": "spark"}

    compacted = run_glue_job(spark, "CompactSalesJob", arguments=engine)
    forecasted = run_glue_job(spark, "ForecastDemandJob", arguments=engine)

    in_tree, _ = _in_tree(tree)
    assert compacted["rows_written"] == in_tree.rows_written > 0
    for table in ("sales", "daily_demand"):
        pd.testing.assert_frame_equal(_curated(spark, table), _curated(tree, table))
    got = _forecast_items(spark.session(), spark.ref("ForecastTable"))
    assert got == _forecast_items(tree.session(), tree.ref("ForecastTable"))
    assert forecasted["items_written"] == len(got) == 6 * 28
