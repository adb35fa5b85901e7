"""``fmcg forecast backtest`` reads prices as the forecast job does: the same relative-price
covariate from the same inputs, the input read in batches into the same matrices as one
long frame, and bad price or promotion columns refused with the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import TerminalError
from pipeline.forecasting import backtest as backtest_module
from pipeline.forecasting.backtest import backtest, from_frame, read_backtest_data, read_inputs
from pipeline.forecasting.forecaster import ForecasterConfig, forecast
from pipeline.forecasting.job import SERIES_KEYS, job_price_covariate, key_covariates
from pipeline.forecasting.series import to_matrix

if TYPE_CHECKING:
    from pathlib import Path

HORIZON = 14
DAYS = 120
START = pd.Timestamp("2024-01-01")
END = START + pd.Timedelta(days=DAYS - 1)  # the cutoff: the last history day


def _world(seed: int = 5) -> pd.DataFrame:
    """Daily rows of 3 SKUs x 2 locations through the horizon: units, the day's mean
    selling price (none on a day without a sale, none at all for one series), a late
    launch, and the shelf price on the horizon's days."""
    rng = np.random.default_rng(seed)
    rows = []
    for sku in ("A", "B", "C"):
        for loc in ("L1", "L2"):
            launch = 40 if (sku, loc) == ("B", "L2") else 0
            shelf = float(rng.uniform(1.0, 9.0))
            for t in range(launch, DAYS + HORIZON):
                units = float(rng.poisson(3.0))
                cut = 0.8 if 30 <= t % 50 < 37 else 1.0  # a promotion now and then
                price = round(shelf * cut, 2) if units > 0 else np.nan
                if (sku, loc) == ("C", "L1"):
                    price = np.nan  # never priced
                rows.append((sku, loc, START + pd.Timedelta(days=t), units, price, shelf))
    return pd.DataFrame(
        rows, columns=["sku_id", "location_id", "date", "units_sold", "avg_unit_price", "shelf"]
    )


PROMOTIONS = pd.DataFrame(
    {
        "sku_id": ["A", "B"],
        "location_id": ["", "L1"],  # A's at every location, B's at L1 only
        "start_date": [END + pd.Timedelta(days=3), END + pd.Timedelta(days=1)],
        "end_date": [END + pd.Timedelta(days=9), END + pd.Timedelta(days=5)],
        "unit_price": [1.5, 2.25],
    }
)


def _job_covariate(world: pd.DataFrame, promotions: pd.DataFrame) -> np.ndarray:
    history = world[world["date"] <= END].assign(stockout=False)
    matrix = to_matrix(history, keys=SERIES_KEYS, value="units_sold", censored="stockout", end=END)
    relative = job_price_covariate(history, matrix, promotions, HORIZON)
    assert relative is not None
    return relative


def _backtest_frame(world: pd.DataFrame, promotions: pd.DataFrame) -> pd.DataFrame:
    """The same world as backtest input: the history's selling prices, and on the
    horizon's days the shelf price, or a planned promotion's price with ``promotion`` 1."""
    frame = world.rename(columns={"units_sold": "sales", "avg_unit_price": "price"})
    frame["id"] = frame["sku_id"] + "|" + frame["location_id"]
    ahead = frame["date"] > END
    frame.loc[ahead, "price"] = frame.loc[ahead, "shelf"]
    frame["promotion"] = 0
    for p in promotions.to_dict("records"):
        on = (
            ahead
            & (frame["sku_id"] == p["sku_id"])
            & (frame["date"] >= p["start_date"])
            & (frame["date"] <= p["end_date"])
        )
        if p["location_id"]:
            on &= frame["location_id"] == p["location_id"]
        frame.loc[on, "price"] = p["unit_price"]
        frame.loc[on, "promotion"] = 1
    return frame.drop(columns="shelf")


def test_given_the_same_inputs_when_building_covariates_then_backtest_and_job_agree() -> None:
    world = _world()
    frame = _backtest_frame(world, PROMOTIONS)

    job = _job_covariate(world, PROMOTIONS)
    inputs = read_inputs(from_frame(frame), cutoff=END, horizon=HORIZON)

    assert inputs.relative_price is not None
    assert inputs.relative_price.shape == (6, DAYS + HORIZON)
    np.testing.assert_array_equal(inputs.relative_price, job)
    # The shelf prices of the horizon's days without a promotion are not planned prices.
    assert inputs.planned_days == 7 * 2 + 5
    assert np.isnan(job[2 * 2]).all()  # C at L1: never priced, unknown throughout


def test_given_no_promotion_column_when_building_covariates_then_every_given_price_is_planned() -> (
    None
):
    world = _world()
    frame = _backtest_frame(world, PROMOTIONS).drop(columns="promotion")
    ahead = frame[(frame["date"] > END) & frame["price"].notna()]
    # The job's equivalent: a one-day promotion at each horizon day's given price.
    promotions = pd.DataFrame(
        {
            "sku_id": ahead["sku_id"],
            "location_id": ahead["location_id"],
            "start_date": ahead["date"],
            "end_date": ahead["date"],
            "unit_price": ahead["price"],
        }
    )

    inputs = read_inputs(from_frame(frame), cutoff=END, horizon=HORIZON)

    np.testing.assert_array_equal(inputs.relative_price, _job_covariate(world, promotions))


def test_given_batches_when_reading_then_the_matrices_equal_one_long_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _backtest_frame(_world(), PROMOTIONS).sample(frac=1.0, random_state=3)
    frame.to_parquet(tmp_path / "data.parquet", index=False, row_group_size=97)
    # Sorted, a row group's dictionary holds ids that some of its batches do not.
    frame.sort_values(["id", "date"]).to_parquet(
        tmp_path / "sorted.parquet", index=False, row_group_size=500
    )
    whole = read_inputs(from_frame(frame), cutoff=END, horizon=HORIZON)
    monkeypatch.setattr(backtest_module, "BATCH_ROWS", 61)

    for source in (
        from_frame(frame),
        read_backtest_data(tmp_path / "data.parquet"),
        read_backtest_data(tmp_path / "sorted.parquet"),
    ):
        batched = read_inputs(source, cutoff=END, horizon=HORIZON)
        pd.testing.assert_frame_equal(batched.keys, whole.keys)
        np.testing.assert_array_equal(batched.history, whole.history)
        np.testing.assert_array_equal(batched.actual, whole.actual)
        np.testing.assert_array_equal(batched.relative_price, whole.relative_price)
    # And those are the matrices of the long frame pivoted as before.
    train = frame[frame["date"] <= END]
    matrix = to_matrix(train, keys=["id"], value="sales", end=END)
    days = matrix.horizon_dates(HORIZON)
    actual = (
        frame[frame["date"].isin(days)]
        .pivot_table(index="id", columns="date", values="sales", aggfunc="sum")
        .reindex(index=matrix.keys["id"], columns=days)
        .to_numpy(dtype=np.float64)
    )
    np.testing.assert_array_equal(whole.history, matrix.values)
    np.testing.assert_array_equal(whole.actual, actual)
    assert whole.keys["id"].tolist() == matrix.keys["id"].tolist()
    assert whole.keys["sku_id"].tolist() == ["A", "A", "B", "B", "C", "C"]
    assert whole.start == START


def test_given_no_price_anywhere_when_backtesting_then_results_equal_no_price_column() -> None:
    frame = _backtest_frame(_world(), PROMOTIONS).drop(columns="promotion")
    config = ForecasterConfig(horizon=HORIZON, global_model=None)
    without = backtest(frame.drop(columns="price"), horizon=HORIZON, config=config)
    unpriced = backtest(frame.assign(price=np.nan), horizon=HORIZON, config=config)
    ignored = backtest(frame, horizon=HORIZON, config=config, prices=False)

    assert unpriced.summary["prices"] == {
        "used": False,
        "series_with_a_price": 0,
        "planned_series_days": 0,
    }
    for other in (unpriced, ignored):
        pd.testing.assert_frame_equal(other.predictions, without.predictions)
        assert other.summary["models"] == without.summary["models"]


def _refused(frame: pd.DataFrame) -> str:
    with pytest.raises(TerminalError) as e:
        read_inputs(from_frame(frame), cutoff=END, horizon=HORIZON)
    return str(e.value)


def test_given_bad_price_or_promotion_columns_when_reading_then_the_reason_is_given(
    tmp_path: Path,
) -> None:
    frame = _backtest_frame(_world(), PROMOTIONS).reset_index(drop=True)
    row = frame.iloc[5]
    where = f"id {row['id']} on {pd.Timestamp(row['date']).date()}"

    assert _refused(frame.assign(price=frame["price"].astype(str))) == (
        "backtest column price must be numeric, not text"
    )
    assert _refused(frame.assign(price=frame["price"].where(frame.index != 5, 0.0))) == (
        f"backtest column price must be positive where given: 0.0 ({where})"
    )
    assert _refused(frame.assign(promotion=frame["promotion"].where(frame.index != 5, 2))) == (
        f"backtest column promotion must be 0 or 1: 2 ({where})"
    )
    no_price = frame.assign(
        price=frame["price"].where(frame.index != 5), promotion=(frame.index == 5).astype(int)
    )
    assert _refused(no_price) == (
        f"a promotion needs its price: promotion 1 without a price ({where})"
    )
    assert _refused(frame.drop(columns="price")) == (
        "backtest column promotion needs a price column: a promotion's price is its planned price"
    )
    assert _refused(frame.assign(sales="x")) == "backtest column sales must be numeric, not text"
    path = tmp_path / "text.parquet"
    frame.assign(price=frame["price"].astype(str)).to_parquet(path)
    with pytest.raises(TerminalError, match=r"^backtest column price must be numeric, not text$"):
        read_inputs(read_backtest_data(path), cutoff=END, horizon=HORIZON)


def test_given_a_fit_window_when_backtesting_then_it_forecasts_as_from_the_whole_history() -> None:
    frame = _backtest_frame(_world(), PROMOTIONS)
    config = ForecasterConfig(horizon=HORIZON, fit_days=60, global_model=None)
    whole = read_inputs(from_frame(frame), cutoff=END, horizon=HORIZON)
    fitted = read_inputs(from_frame(frame), cutoff=END, horizon=HORIZON, fit_days=60)
    covariates = key_covariates(whole.keys, whole.start, None, whole.relative_price)

    direct = forecast(whole.history, config, covariates)
    result = backtest(frame, cutoff=END, horizon=HORIZON, config=config)

    assert fitted.fitted_from == DAYS - 60
    assert whole.relative_price is not None
    np.testing.assert_array_equal(fitted.relative_price, whole.relative_price[:, DAYS - 60 :])
    np.testing.assert_array_equal(result.predictions["forecast_val"], direct.point.ravel())
    np.testing.assert_array_equal(result.predictions["upper_95"], direct.bounds(0.95)[1].ravel())
