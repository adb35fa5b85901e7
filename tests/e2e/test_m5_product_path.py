"""The product path on real data: M5 history imported, forecast as of a past day, read back.

A slice of the M5 subset with its prices (18 series: the 6 SKUs the subset has at three
stores each, every day of theirs from 2015, long enough for the global model) goes
through ``ImportHistoryJob`` and ``ForecastDemandJob --as_of 2016-04-25 --publish true``,
both run from their artifacts as Glue runs them, and the forecasts are read through the
API (the gateway, a Viewer's Cognito token). They must be the backtest's forecasts of the
same slice at the standard cutoff (train through 2016-04-24, 28 days), up to the 4
decimals the job writes to DynamoDB.

Same inputs on both sides, nothing more:

- the history: the backtest reads ``sales`` and ``sell_price`` from the rows; the job reads
  the imported ``daily_demand`` (``units_sold``, ``avg_unit_price``) before ``as_of``;
- the horizon's prices: the backtest (no ``promotion`` column) takes every horizon price
  as planned, as M5's shelf prices are known in advance. The job knows a planned price only
  from ``reference/promotions/``, so the horizon's prices are uploaded there (one row per
  run of equal price). The horizon's *sales* reach neither forecaster: the job sees only
  the actuals before ``as_of``, and the backtest scores on them only;
- the places and events: ``benchmarks/m5_calendar.yaml`` is the backtest's calendar; the
  job gets the same stores as its locations table and the same file's SNAP events under
  ``reference/calendar/``.

Skipped when the M5 subset is not there (it lives next to the repository, in
``../shared/data/m5_subset/``, not in it).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.forecasting.backtest import backtest
from pipeline.forecasting.calendar import CalendarSpec
from pipeline.local.gateway import LocalGateway
from pipeline.local.glue_runtime import run_glue_job
from pipeline.local.invoke import load_handler
from pipeline.local.stack import LocalStack
from pipeline.local.users import create_user, id_token

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
M5_DIR = (REPO / "../shared/data/m5_subset").resolve()
M5 = M5_DIR / "m5_subset_944.parquet"
M5_PRICES = M5_DIR / "m5_subset_944_prices.parquet"
M5_CALENDAR = REPO / "benchmarks" / "m5_calendar.yaml"

#: The subset's SKUs at three stores (none is at more): one SKU's trend across locations.
STORES_PER_SKU = 3
#: The slice's first day: 298 days before the cutoff, enough for the global model (it needs
#: about 250; the test asserts it ran). Every day imported is a partition of two tables
#: written to the emulator, so more history costs the suite time and proves nothing more
#: (from 2015-01-01, 480 days, the import took 14.2 s alone; from here 9.5 s).
FIRST_DAY = date(2015, 7, 1)
CUTOFF = "2016-04-24"
AS_OF = "2016-04-25"
HORIZON = 28
ZONES = {"CA": "America/Los_Angeles", "TX": "America/Chicago", "WI": "America/Chicago"}
#: DynamoDB holds each number rounded to 4 decimals (``dynamo._number``): one rounding
#: step, plus the last bits of a float sum taken in another order.
TOLERANCE = 1e-4 + 1e-9


def m5_slice(stores: int = STORES_PER_SKU) -> pd.DataFrame:
    """The series of the SKUs sold at ``stores`` stores, every day of theirs from
    :data:`FIRST_DAY`, with the day's price: columns id, item_id, store_id, date, sales,
    sell_price."""
    if not (M5.exists() and M5_PRICES.exists()):
        pytest.skip(f"M5 subset with prices not found in {M5_DIR} (it lives in ../shared/data/)")
    columns = ["id", "item_id", "store_id", "date", "sales"]
    sales = pq.read_table(M5, columns=columns, filters=[("date", ">=", FIRST_DAY)]).to_pandas()
    at = sales.groupby("item_id")["store_id"].nunique()
    sales = sales.loc[sales["item_id"].isin(at.index[at == stores])]
    prices = pq.read_table(M5_PRICES).to_pandas()
    prices["id"] = prices["id"].astype(str)
    sales = sales.assign(id=sales["id"].astype(str)).merge(prices, on=["id", "date"], how="left")
    return sales.sort_values(["id", "date"]).reset_index(drop=True)


def horizon_promotions(data: pd.DataFrame) -> pd.DataFrame:
    """The horizon's prices as planned promotions: one row per series and run of days at
    one price (the job's ``reference/promotions/`` columns)."""
    first, last = pd.Timestamp(AS_OF), pd.Timestamp(AS_OF) + pd.Timedelta(days=HORIZON - 1)
    days = pd.to_datetime(data["date"])
    ahead = data.loc[(days >= first) & (days <= last) & data["sell_price"].notna()].copy()
    ahead["date"] = pd.to_datetime(ahead["date"])
    ahead = ahead.sort_values(["item_id", "store_id", "date"])
    series = ahead[["item_id", "store_id"]]
    new_run = (
        (series != series.shift()).any(axis=1)
        | (ahead["sell_price"] != ahead["sell_price"].shift())
        | (ahead["date"].diff() != pd.Timedelta(days=1))
    )
    ahead["run"] = new_run.cumsum()
    runs = ahead.groupby("run").agg(
        sku_id=("item_id", "first"),
        location_id=("store_id", "first"),
        start_date=("date", "min"),
        end_date=("date", "max"),
        unit_price=("sell_price", "first"),
    )
    for column in ("start_date", "end_date"):
        runs[column] = runs[column].dt.date.astype(str)
    return runs.reset_index(drop=True)


def upload_reference(stack: LocalStack, data: pd.DataFrame) -> None:
    """The M5 stores (locations table), their SNAP events and the horizon's prices."""
    s3 = stack.session().client("s3")
    bucket = stack.ref("CuratedBucket")
    stores = sorted(data["store_id"].unique())
    locations = pd.DataFrame(
        {
            "location_id": stores,
            "time_zone": [ZONES[s[:2]] for s in stores],
            "country": "US",
            "subdivision": [s[:2] for s in stores],
        }
    )
    uploads = {
        "reference/locations/m5.csv": locations.to_csv(index=False).encode(),
        "reference/calendar/m5.yaml": M5_CALENDAR.read_bytes(),
        "reference/promotions/m5_horizon_prices.csv": horizon_promotions(data)
        .to_csv(index=False)
        .encode(),
    }
    for key, body in uploads.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def import_and_forecast(stack: LocalStack, data: pd.DataFrame, scratch: Path) -> dict[str, Any]:
    """``data`` imported through ImportHistoryJob, then ForecastDemandJob's published
    backfill as of :data:`AS_OF`; the forecast job's report."""
    source = scratch / "m5_slice.parquet"
    data.rename(
        columns={"item_id": "sku", "store_id": "location", "sales": "units", "sell_price": "price"}
    )[["sku", "location", "date", "units", "price"]].to_parquet(source, index=False)
    imported = run_glue_job(
        stack,
        "ImportHistoryJob",
        arguments={
            "--source": str(source),
            "--sku_id": "sku",
            "--location_id": "location",
            "--date": "date",
            "--units": "units",
            "--price": "price",
        },
    )
    assert imported["rows_quarantined"] == 0, imported
    upload_reference(stack, data)
    return run_glue_job(
        stack, "ForecastDemandJob", arguments={"--as_of": AS_OF, "--publish": "true"}
    )


def api_forecasts(stack: LocalStack, keys: pd.DataFrame) -> pd.DataFrame:
    """Every series' horizon read through ``GET /forecasts`` as a Viewer."""
    user = f"m5-viewer-{uuid.uuid4().hex[:6]}"
    create_user(stack, user, groups=["ViewerGroup"])
    token = id_token(stack, user)
    last = (pd.Timestamp(AS_OF) + pd.Timedelta(days=HORIZON - 1)).date().isoformat()
    items: list[dict[str, Any]] = []
    with LocalGateway(stack, load_handler(stack, "GetForecastFunction")) as gateway:
        for sku, location in keys.itertuples(index=False):
            query = urllib.parse.urlencode(
                {"sku_id": sku, "location_id": location, "from": AS_OF, "to": last}
            )
            request = urllib.request.Request(
                f"{gateway.url}/forecasts?{query}", headers={"Authorization": token}
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                body = json.loads(response.read())
            assert response.status == 200
            assert body.get("next_token") is None
            items += body["items"]
    return pd.DataFrame(items)


@pytest.fixture(scope="module")
def m5_run(emulator_url, tmp_path_factory):
    data = m5_slice()
    stack = LocalStack.create(emulator_url, stack_name=f"m5{uuid.uuid4().hex[:8]}")
    report = import_and_forecast(stack, data, tmp_path_factory.mktemp("m5"))
    return stack, data, report


def test_given_imported_m5_when_forecast_as_of_the_cutoff_then_the_api_serves_the_backtest(
    m5_run,
):
    stack, data, report = m5_run
    keys = data[["item_id", "store_id"]].drop_duplicates().sort_values(["item_id", "store_id"])
    series = len(keys)
    assert report["series"] == series == 18
    assert report["global_model"]
    assert report["last_actual_date"] == CUTOFF
    assert report["items_written"] == series * HORIZON
    assert report["items_kept_newer"] == 0

    served = api_forecasts(stack, keys)
    # Published today, the items expire 90 days from now, not 90 days after 2016-04-25
    # (the newer-forecast rule: tests/functional/forecasting/test_forecast_job.py).
    item = (
        stack.session()
        .resource("dynamodb")
        .Table(stack.ref("ForecastTable"))
        .scan(Limit=1)["Items"][0]
    )
    assert int(item["ttl"]) > pd.Timestamp.now(tz="UTC").timestamp() + 89 * 86400
    assert served["generated_at"].eq("2016-04-25T00:00:00+00:00").all()
    calendar = CalendarSpec.read(M5_CALENDAR.read_text())
    expected = backtest(data.rename(columns={"sell_price": "price"}), cutoff=CUTOFF,
                        horizon=HORIZON, calendar=calendar)  # fmt: skip
    assert expected.summary["prices"]["planned_series_days"] == series * HORIZON

    ids = data[["id", "item_id", "store_id"]].drop_duplicates()
    predicted = expected.predictions.merge(ids, on="id").rename(
        columns={"item_id": "sku_id", "store_id": "location_id"}
    )
    predicted["date"] = predicted["date"].astype(str)
    joined = predicted.merge(
        served, on=["sku_id", "location_id", "date"], how="outer", suffixes=("_bt", "_api"),
        indicator=True,
    )  # fmt: skip
    assert (joined["_merge"] == "both").all(), joined.loc[joined["_merge"] != "both"]
    assert len(joined) == series * HORIZON
    for name in ("forecast_val", "confidence_lower", "confidence_upper"):
        gap = np.abs(joined[f"{name}_api"].astype(float) - joined[f"{name}_bt"].round(4))
        worst = int(np.argmax(gap.to_numpy()))
        assert gap.max() <= TOLERANCE, (name, joined.iloc[worst].to_dict())
