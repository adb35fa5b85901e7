"""The forecast job against the emulator: items, TTL, archive, ForecastBias, exactly-once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from pipeline.errors import ConfigurationError
from pipeline.forecasting.dynamo import BatchWriter, ForecastRow, forecast_item, write_forecasts
from pipeline.forecasting.forecaster import ForecasterConfig
from pipeline.forecasting.global_model import GlobalModelConfig
from pipeline.forecasting.job import run_forecast
from pipeline.lake.tables import DAILY_DEMAND, ensure_table, iceberg_catalog, with_partition_columns
from tests.support.compaction_lake import curated_rows

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack

NOW = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)


def _demand(days: int = 56, series: int = 3, end: date = date(2024, 2, 29)) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    dates = pd.date_range(end=end, periods=days, freq="D")
    frames = []
    for i in range(series):
        weekly = 1 + 0.4 * (dates.day_of_week >= 5)
        sold = rng.poisson(5 * (i + 1) * weekly)
        frames.append(_series(f"SKU-{i}", dates, sold, stock=50))
    return pd.concat(frames, ignore_index=True)


def _series(sku: str, dates: pd.DatetimeIndex, sold: Any, *, stock: int) -> pd.DataFrame:
    """One SKU's daily demand at STORE-1, never out of stock."""
    days = len(dates)
    return pd.DataFrame(
        {
            "sku_id": sku,
            "location_id": "STORE-1",
            "date": dates.date,
            "units_sold": np.asarray(sold).astype("int64"),
            "units_returned": np.zeros(days, dtype="int64"),
            "end_of_day_stock": np.full(days, stock, dtype="int64"),
            "stockout": np.zeros(days, dtype=bool),
        }
    )


def _write_demand(stack: LocalStack, frame: pd.DataFrame) -> None:
    """Append daily demand rows to the stack's ``daily_demand`` table."""
    session = stack.session()
    table = ensure_table(
        iceberg_catalog(session),
        stack.ref("LakeDatabase"),
        stack.ref("CuratedBucket"),
        DAILY_DEMAND,
    )
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    missing = [f for f in DAILY_DEMAND.columns if f.name not in rows.column_names]
    for f in missing:
        rows = rows.append_column(f.name, pa.nulls(rows.num_rows, f.type))
    table.append(with_partition_columns(rows, DAILY_DEMAND))


def _archive(stack: LocalStack) -> pd.DataFrame:
    return curated_rows(stack.session(), stack.ref("LakeDatabase"), "forecasts")


def _scan(stack: LocalStack) -> list[dict[str, Any]]:
    table = stack.session().resource("dynamodb").Table(stack.ref("ForecastTable"))
    return list(table.scan()["Items"])


def _run(  # type: ignore[no-untyped-def]
    stack: LocalStack,
    now: datetime = NOW,
    horizon: int = 7,
    config: ForecasterConfig | None = None,
):
    return run_forecast(
        curated_bucket=stack.ref("CuratedBucket"),
        database=stack.ref("LakeDatabase"),
        forecast_table=stack.ref("ForecastTable"),
        horizon_days=horizon,
        session=stack.session(),
        now=now,
        **({"config": config} if config else {}),
    )


def test_given_daily_demand_when_job_runs_then_items_have_the_seed_schema_and_ttl(
    stack: LocalStack,
) -> None:
    _write_demand(stack, _demand())
    report = _run(stack)

    items = _scan(stack)
    assert report.series == 3
    assert report.items_written == len(items) == 3 * 7
    assert sum(report.models.values()) == 3
    assert report.forecast_bias_pct is None  # nothing archived before the first run
    assert len(report.run_id) == 32  # a new id (uuid4 hex) when no run id is given
    keys = {(i["PK"], i["SK"]) for i in items}
    assert ("SKU#SKU-0", "LOC#STORE-1#DATE#2024-03-01") in keys
    assert ("SKU#SKU-2", "LOC#STORE-1#DATE#2024-03-07") in keys
    expected_ttl = (NOW + timedelta(days=90)).timestamp()
    for item in items:
        assert set(item) == {
            "PK",
            "SK",
            "DateSK",
            "forecast_val",
            "confidence_lower",
            "confidence_upper",
            "lower_95",
            "upper_95",
            "ttl",
            "run_id",
            "generated_at",
        }
        # One run wrote them all, and says so: its id and when it ran, in UTC.
        assert item["run_id"] == report.run_id
        assert item["generated_at"] == report.generated_at == "2024-03-01T06:00:00+00:00"
        location, day = item["SK"].removeprefix("LOC#").split("#DATE#")
        assert item["DateSK"] == f"DATE#{day}#LOC#{location}"  # the ByDate index key
        assert isinstance(item["forecast_val"], Decimal)
        assert 0 <= item["confidence_lower"] <= item["forecast_val"] <= item["confidence_upper"]
        # the 95 % interval holds the 80 % one
        assert item["lower_95"] <= item["confidence_lower"]
        assert item["confidence_upper"] <= item["upper_95"]
        assert abs(int(item["ttl"]) - expected_ttl) < 60
    written = write_forecasts(
        [ForecastRow("SKU-0", "STORE-1", date(2024, 3, 1), 2.0, 1.0, 3.0)],
        table_name=stack.ref("ForecastTable"),
        now=datetime.now(UTC),
        run_id="another-run",
        session=stack.session(),
    )
    assert written == 1
    real_now_ttl = (datetime.now(UTC) + timedelta(days=90)).timestamp()
    item = next(
        i
        for i in _scan(stack)
        if i["SK"] == "LOC#STORE-1#DATE#2024-03-01" and i["PK"] == "SKU#SKU-0"
    )
    assert abs(int(item["ttl"]) - real_now_ttl) < 60


def test_given_archived_forecasts_when_actuals_arrive_then_bias_is_emitted_as_emf(
    stack: LocalStack,
) -> None:
    demand = _demand()
    _write_demand(stack, demand)
    _run(stack)
    archive = _archive(stack)
    assert set(archive.columns) >= {
        "sku_id",
        "location_id",
        "date",
        "forecast_val",
        "confidence_lower",
        "confidence_upper",
        "lower_95",
        "upper_95",
        "model",
        "generated_at",
    }
    assert len(archive) == 21

    # A week of actuals arrives: 10 units a day for every series, one day a stockout.
    new_days = pd.date_range("2024-03-01", periods=7, freq="D").date
    actuals = pd.DataFrame(
        [
            {
                "sku_id": f"SKU-{i}",
                "location_id": "STORE-1",
                "date": d,
                "units_sold": 10,
                "units_returned": 0,
                "end_of_day_stock": 5,
                "stockout": (i == 0 and k == 0),
            }
            for i in range(3)
            for k, d in enumerate(new_days)
        ]
    )
    _write_demand(stack, actuals)
    archive = archive.assign(date=pd.to_datetime(archive["date"]).dt.date)
    censored = (archive["sku_id"] == "SKU-0") & (archive["date"] == new_days[0])
    forecast_sum = float(archive.loc[~censored, "forecast_val"].sum())
    expected = 100 * (forecast_sum - 200) / 200  # 20 uncensored days x 10 units

    run_at = NOW + timedelta(days=7, seconds=41)  # a moment no other test puts a datum at
    report = _run(stack, now=run_at)

    assert report.forecast_bias_pct == pytest.approx(expected)
    cloudwatch = stack.session().client("cloudwatch")
    metric = {
        "Namespace": "FMCG/Business",
        "MetricName": "ForecastBias",
        "Dimensions": [{"Name": "service", "Value": "forecast"}],
    }
    got = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {"Id": "bias", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}}
        ],
        StartTime=run_at - timedelta(seconds=1),
        EndTime=run_at + timedelta(seconds=1),
    )
    assert got["MetricDataResults"][0]["Values"] == [pytest.approx(expected)]


def test_given_a_store_whose_day_is_in_progress_when_job_runs_then_that_day_is_no_actual(
    stack: LocalStack,
) -> None:
    # GIVEN STORE-1 in Los Angeles: at NOW (06:00 UTC on 1 March) it is 22:00 on 29 Feb
    # there, so the 29 Feb row is a partial day (one unit so far, against ~5 to 15 a day)
    bucket = stack.ref("CuratedBucket")
    stack.session().client("s3").put_object(
        Bucket=bucket,
        Key="reference/locations/stores.csv",
        Body=b"location_id,time_zone,country,subdivision\nSTORE-1,America/Los_Angeles,US,CA\n",
    )
    demand = _demand()
    partial = pd.to_datetime(demand["date"]) == pd.Timestamp("2024-02-29")
    demand.loc[partial, "units_sold"] = 1
    _write_demand(stack, demand)

    # WHEN the job runs
    report = _run(stack)

    # THEN the history ends on 28 Feb, and 29 Feb is forecast, not taken as an actual
    archive = _archive(stack)
    assert report.last_actual_date == "2024-02-28"
    assert pd.to_datetime(archive["date"]).min() == pd.Timestamp("2024-02-29")


def test_given_a_backfill_as_of_a_past_day_when_today_runs_then_bias_compares_it_with_actuals(
    stack: LocalStack,
) -> None:
    demand = _demand()  # 56 days up to 2024-02-29
    _write_demand(stack, demand)
    as_of = date(2024, 2, 20)

    backfill = run_forecast(
        curated_bucket=stack.ref("CuratedBucket"),
        database=stack.ref("LakeDatabase"),
        forecast_table=stack.ref("ForecastTable"),
        horizon_days=14,  # up to 2024-03-04, past the last actual
        session=stack.session(),
        as_of=as_of,
    )

    assert backfill.last_actual_date == "2024-02-19"
    assert backfill.generated_at == "2024-02-20T00:00:00+00:00"
    assert backfill.forecast_bias_pct is None
    assert backfill.items_written == 0 and _scan(stack) == []  # DynamoDB serves today's only

    archive = _archive(stack)
    actual = demand.loc[pd.to_datetime(demand["date"]) >= pd.Timestamp(as_of)]
    actual = actual.loc[pd.to_datetime(actual["date"]) < pd.Timestamp(date(2024, 3, 1))]
    expected = 100 * (archive["forecast_val"].sum() - actual["units_sold"].sum())
    expected /= actual["units_sold"].sum()

    assert len(archive) == 3 * 10  # only the days that already have actuals
    report = _run(stack)

    assert report.forecast_bias_pct == pytest.approx(expected)


def test_given_a_published_backfill_then_its_days_are_served_but_no_newer_forecast_is_replaced(
    stack: LocalStack,
) -> None:
    _write_demand(stack, _demand())  # 56 days up to 2024-02-29
    today = _run(stack)  # a regular run at NOW: 3 series x 7 days from 2024-03-01
    served = {(i["PK"], i["SK"]): i for i in _scan(stack)}
    before = datetime.now(UTC)

    backfill = run_forecast(
        curated_bucket=stack.ref("CuratedBucket"),
        database=stack.ref("LakeDatabase"),
        forecast_table=stack.ref("ForecastTable"),
        horizon_days=14,  # 2024-02-20 .. 2024-03-04: 4 days overlap today's run
        session=stack.session(),
        as_of=date(2024, 2, 20),
        publish=True,
    )

    assert (backfill.items_written, backfill.items_kept_newer) == (3 * 10, 3 * 4)
    items = {(i["PK"], i["SK"]): i for i in _scan(stack)}
    assert len(items) == 3 * 14 + 3 * 3  # the backfill's 14 days, today's 3 after them
    for key, item in items.items():
        day = date.fromisoformat(key[1].rpartition("#")[2])
        if day >= date(2024, 3, 1):  # today's run made these for a later moment: they stay
            assert item == served[key] and item["run_id"] == today.run_id
            continue
        assert item["run_id"] == backfill.run_id
        assert item["generated_at"] == "2024-02-20T00:00:00+00:00"
        # The TTL counts from when the items were written, not from 2024-02-20.
        assert int(item["ttl"]) >= int(before.timestamp()) + 90 * 86400
    assert len(_archive(stack)) == 3 * (10 + 7)  # the backfill archives its days with actuals


def test_given_publish_without_as_of_then_the_run_is_refused(stack: LocalStack) -> None:
    with pytest.raises(ConfigurationError, match="as_of"):
        run_forecast(
            curated_bucket=stack.ref("CuratedBucket"),
            database=stack.ref("LakeDatabase"),
            forecast_table=stack.ref("ForecastTable"),
            session=stack.session(),
            publish=True,
        )


class FlakyDynamoDB:
    """Wraps a real client: throttles every 3rd call and leaves the last 5 items of every
    other accepted batch unprocessed (writing only the rest), as DynamoDB may."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0
        self.written: dict[tuple[str, str], int] = {}

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        if self.calls % 3 == 0:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "BatchWriteItem",
            )
        ((table, requests),) = RequestItems.items()
        accepted, left = (
            (requests[:-5], requests[-5:])
            if self.calls % 2 and len(requests) > 5
            else (requests, [])
        )
        self.client.batch_write_item(RequestItems={table: accepted})
        for request in accepted:
            item = request["PutRequest"]["Item"]
            key = (item["PK"]["S"], item["SK"]["S"])
            self.written[key] = self.written.get(key, 0) + 1
        return {"UnprocessedItems": {table: left} if left else {}}


def test_given_throttling_and_unprocessed_items_when_writing_then_every_item_lands_once(
    stack: LocalStack,
) -> None:
    rows = [
        ForecastRow(f"SKU-{i}", f"LOC-{j}", date(2024, 3, 1) + timedelta(days=d), 1.5, 1.0, 2.0)
        for i in range(10)
        for j in range(3)
        for d in range(10)
    ]
    flaky = FlakyDynamoDB(stack.session().client("dynamodb"))
    writer = BatchWriter(
        stack.ref("ForecastTable"), dynamodb_client=flaky, workers=1, sleep=lambda _: None
    )

    written = writer.write(forecast_item(r, now=NOW, run_id="run-1") for r in rows)

    assert written == 300
    assert len(flaky.written) == 300
    assert set(flaky.written.values()) == {1}
    assert flaky.calls > 13  # 12 batches needed retries: throttles and leftovers happened
    assert len(_scan(stack)) == 300


def test_given_a_non_throttling_error_when_writing_then_it_is_terminal(
    stack: LocalStack,
) -> None:
    from pipeline.errors import TerminalError

    writer = BatchWriter("no-such-table", session=stack.session(), sleep=lambda _: None)
    row = ForecastRow("A", "B", date(2024, 3, 1), 1.0, 0.0, 2.0)
    with pytest.raises(TerminalError, match="BatchWriteItem on no-such-table: ResourceNotFound"):
        writer.write([forecast_item(row, now=NOW, run_id="run-1")])


#: The job's forecaster with a global model that trains in a fraction of the default's
#: time (fewer rounds): what the promotion test checks is that the planned price reaches
#: the model, not how well the default settings fit.
QUICK_GLOBAL = ForecasterConfig(horizon=7, global_model=GlobalModelConfig(rounds=60))


def _priced_demand(days: int = 280, skus: int = 40) -> pd.DataFrame:
    """Daily demand with a regular price of 2.00 and promotion weeks at 1.50 that double
    the units sold: enough history for the global model (about 200 days at horizon 7)."""
    rng = np.random.default_rng(3)
    dates = pd.date_range(end=date(2024, 2, 29), periods=days, freq="D")
    frames = []
    for i in range(skus):
        promo = np.zeros(days, dtype=bool)
        for start in rng.choice(days - 7, size=8, replace=False):
            promo[start : start + 7] = True
        sold = rng.poisson(6 * (1 + 0.4 * (dates.day_of_week >= 5)) * np.where(promo, 2.0, 1.0))
        frames.append(
            _series(f"SKU-{i}", dates, sold, stock=500).assign(
                avg_unit_price=np.where(promo, 1.5, 2.0)
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.slow
def test_given_a_declared_closure_and_a_planned_promotion_when_job_runs_then_both_shape_it(
    stack: LocalStack,
) -> None:
    s3 = stack.session().client("s3")
    bucket = stack.ref("CuratedBucket")
    _write_demand(stack, _priced_demand())
    s3.put_object(
        Bucket=bucket,
        Key="reference/calendar/store.yaml",
        Body=b"closures:\n  - annual: ['03-03']\n    locations: [STORE-1]\n",
    )
    assert _run(stack, config=QUICK_GLOBAL).global_model
    before = {(i["PK"], i["SK"]): i for i in _scan(stack)}
    s3.put_object(
        Bucket=bucket,
        Key="reference/promotions/spring.csv",
        Body=b"sku_id,location_id,start_date,end_date,unit_price\n"
        b"SKU-0,STORE-1,2024-03-05,2024-03-06,1.50\n",
    )
    _run(stack, config=QUICK_GLOBAL)
    after = {(i["PK"], i["SK"]): i for i in _scan(stack)}

    # The store is closed on 3 March: no demand, no doubt, for each of its SKUs.
    closed = [item for (_, sk), item in after.items() if sk == "LOC#STORE-1#DATE#2024-03-03"]
    assert len(closed) == len({pk for pk, sk in after if sk.startswith("LOC#STORE-1#")}) > 0
    for item in closed:
        assert item["forecast_val"] == item["upper_95"] == item["lower_95"] == 0
    promo_days = ("LOC#STORE-1#DATE#2024-03-05", "LOC#STORE-1#DATE#2024-03-06")
    for sk in promo_days:
        key = ("SKU#SKU-0", sk)
        assert after[key]["forecast_val"] > Decimal("1.3") * before[key]["forecast_val"]
    # Another SKU's forecast is not moved by SKU-0's promotion.
    for sk in promo_days:
        key = ("SKU#SKU-1", sk)
        assert abs(after[key]["forecast_val"] - before[key]["forecast_val"]) < Decimal("0.01")
