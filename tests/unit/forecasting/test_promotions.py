"""The synthetic world's promotions (a week at 75 % of the price, 2.2x the demand of a fast
seller) are what the price covariate lets the forecaster recover: on planned promotion days
the model that sees the planned price beats the same model without it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigurationError
from pipeline.forecasting.calendar import CalendarSpec
from pipeline.forecasting.forecaster import Covariates, Forecast, ForecasterConfig, forecast
from pipeline.forecasting.global_model import GlobalModelConfig
from pipeline.forecasting.prices import planned_prices, price_matrix, relative_prices
from pipeline.forecasting.series import SeriesMatrix, to_matrix
from pipeline.synth.generator import PROMO_PRICE_FACTOR, SynthConfig, generate_events

KEYS = ["sku_id", "location_id"]
HORIZON = 28


def _daily(config: SynthConfig) -> pd.DataFrame:
    """Daily units and mean selling price per SKU x location, as compaction books them."""
    sales = pd.DataFrame([e for e in generate_events(config) if e["event_type"] == "sale"])
    sales["date"] = pd.to_datetime(sales["event_time"].str[:10])
    sales["revenue"] = sales["quantity"] * sales["unit_price"]
    daily = sales.groupby([*KEYS, "date"], as_index=False)[["quantity", "revenue"]].sum()
    return daily.assign(
        units_sold=daily["quantity"], avg_unit_price=daily["revenue"] / daily["quantity"]
    )


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    config = SynthConfig(
        seed=11,
        n_skus=30,
        n_locations=3,
        start=date(2024, 1, 1),
        days=420 + HORIZON,
        events_per_day=600.0,
        promo_rate=0.15,
        slow_mover_share=0.0,
        stockout_rate=0.0,
        cover_days=60.0,
    )
    return _daily(config)


@dataclass(frozen=True)
class Setup:
    matrix: SeriesMatrix
    test: pd.DataFrame
    prices: np.ndarray
    covariates: dict[str, Any]
    without: Forecast  # the forecast without prices


CONFIG = ForecasterConfig(global_model=GlobalModelConfig(rounds=100, max_rows=100_000))


@pytest.fixture(scope="module")
def setup(world: pd.DataFrame) -> Setup:
    end = world["date"].max() - pd.Timedelta(days=HORIZON)
    train = world[world["date"] <= end]
    matrix = to_matrix(train, keys=KEYS, value="units_sold", end=end)
    groups = {
        "all": np.zeros(len(matrix.keys), dtype=np.int64),
        "sku": pd.factorize(matrix.keys["sku_id"])[0].astype(np.int64),
    }
    common = {
        "start": matrix.start,
        "locations": matrix.keys["location_id"].tolist(),
        "calendar": CalendarSpec(),
        "groups": groups,
    }
    return Setup(
        matrix=matrix,
        test=world[world["date"].isin(matrix.horizon_dates(HORIZON))],
        prices=price_matrix(train, matrix, keys=KEYS),
        covariates=common,
        without=forecast(matrix.values, CONFIG, Covariates(**common)),
    )


def _horizon(setup: Setup, column: str) -> np.ndarray:
    days = setup.matrix.horizon_dates(HORIZON)
    table = setup.test.pivot_table(index=KEYS, columns="date", values=column)
    return table.reindex(index=pd.MultiIndex.from_frame(setup.matrix.keys), columns=days).to_numpy()


def test_given_planned_promotions_when_forecast_with_price_then_promotion_days_beat_no_price(
    setup: Setup,
) -> None:
    actual = np.nan_to_num(_horizon(setup, "units_sold"))
    future_price = _horizon(setup, "avg_unit_price")
    regular = np.nanmax(setup.prices[:, -60:], axis=1, keepdims=True)
    # The plan a retailer would load: the promotion weeks in the horizon, at their price.
    promo_days = future_price < regular * (PROMO_PRICE_FACTOR + 0.05)
    planned = np.where(promo_days, future_price, np.nan)
    assert promo_days.sum() > 50  # enough promotion days to judge on

    with_price = forecast(
        setup.matrix.values,
        CONFIG,
        Covariates(**setup.covariates, relative_price=relative_prices(setup.prices, planned)),
    )
    without = setup.without

    def promo_mse(point: np.ndarray) -> float:
        return float(np.mean((point[promo_days] - actual[promo_days]) ** 2))

    def other_mse(point: np.ndarray) -> float:
        return float(np.mean((point[~promo_days] - actual[~promo_days]) ** 2))

    assert with_price.global_model
    # Measured: 0.34x on promotion days, 0.78x on the others (seed 11).
    assert promo_mse(with_price.point) < 0.7 * promo_mse(without.point)
    # and knowing the price does not cost accuracy on the other days
    assert other_mse(with_price.point) < 1.05 * other_mse(without.point)


def test_given_every_price_regular_when_forecast_then_exactly_the_forecast_without_prices(
    setup: Setup,
) -> None:
    # A shelf price that never moves says nothing: the price booster's correction is its
    # prediction at the day's price minus at the regular one, 0 here, on every row.
    relative = relative_prices(setup.prices, np.full((len(setup.matrix.keys), HORIZON), np.nan))
    steady = np.where(np.isnan(relative), np.nan, 1.0)
    assert np.isfinite(steady).any()

    priced = forecast(
        setup.matrix.values, CONFIG, Covariates(**setup.covariates, relative_price=steady)
    )

    assert priced.global_model
    np.testing.assert_array_equal(priced.point, setup.without.point)
    for level, (lower, upper) in setup.without.intervals.items():
        np.testing.assert_array_equal(priced.bounds(level)[0], lower)
        np.testing.assert_array_equal(priced.bounds(level)[1], upper)


def test_given_no_sale_days_when_relative_price_then_shelf_price_carries_and_future_is_regular():
    prices = np.array([[2.0, np.nan, 1.5, np.nan, 2.0], [np.nan] * 5])
    planned = np.array([[np.nan, 1.0], [np.nan, np.nan]])
    relative = relative_prices(prices, planned)
    np.testing.assert_allclose(relative[0], [1.0, 1.0, 0.75, 0.75, 1.0, 1.0, 0.5])
    assert np.isnan(relative[1]).all()  # never sold: no regular price to compare with


def test_given_a_promotion_without_a_price_when_planned_then_configuration_error():
    matrix = to_matrix(
        pd.DataFrame(
            {"sku_id": ["A"], "location_id": ["L"], "date": ["2024-01-01"], "units_sold": [1]}
        ),
        keys=KEYS,
        value="units_sold",
    )
    bad = pd.DataFrame(
        {
            "sku_id": ["A"],
            "location_id": [None],
            "start_date": ["2024-01-03"],
            "end_date": ["2024-01-02"],
            "unit_price": [1.0],
        }
    )
    with pytest.raises(ConfigurationError) as e:
        planned_prices(bad, matrix, 7)
    assert str(e.value) == (
        "planned promotion of A from 2024-01-03 to 2024-01-02: needs a positive unit_price "
        "and end_date on or after start_date"
    )
