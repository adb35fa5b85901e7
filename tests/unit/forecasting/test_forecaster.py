"""Pure tests of the forecaster, the scoring, the item shape and the bias arithmetic."""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.forecasting.dynamo import ForecastRow, forecast_item, utc_timestamp
from pipeline.forecasting.evaluate import rmsse, rmsse_scale
from pipeline.forecasting.forecaster import ForecasterConfig, forecast
from pipeline.forecasting.job import ForecastReport, forecast_bias_pct
from pipeline.forecasting.series import to_matrix
from pipeline.glue_args import parse_glue_args

REPO = Path(__file__).resolve().parents[3]
M5 = (REPO / "../shared/data/m5_subset/m5_subset_944.parquet").resolve()


def _weekly(days: int = 400, level: float = 20.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weekday = np.arange(days) % 7
    return rng.poisson(level * (1 + 0.5 * (weekday >= 5))).astype(np.float64)


def test_given_a_stockout_gap_when_forecasting_then_the_zeros_do_not_lower_the_forecast() -> None:
    sales = _weekly()
    stocked_out = sales.copy()
    stocked_out[-20:-6] = 0  # two weeks with an empty shelf, recorded as 0 sold
    frame = pd.DataFrame(
        {
            "sku_id": ["A"] * 400 + ["B"] * 400,
            "location_id": "L",
            "date": list(pd.date_range("2023-01-01", periods=400)) * 2,
            "units_sold": np.concatenate([sales, stocked_out]),
            "stockout": [False] * 400 + [14 + 380 > i >= 380 for i in range(400)],
        }
    )
    censored = to_matrix(
        frame, keys=["sku_id", "location_id"], value="units_sold", censored="stockout"
    )
    as_zero = to_matrix(frame, keys=["sku_id", "location_id"], value="units_sold")

    with_mask = forecast(censored.values, ForecasterConfig(horizon=14)).point
    without_mask = forecast(as_zero.values, ForecasterConfig(horizon=14)).point

    assert np.isnan(censored.values[1, 380:394]).all()
    # Masked: B forecasts like A (same demand apart from the gap), within 10 %.
    assert with_mask[1].sum() == pytest.approx(with_mask[0].sum(), rel=0.10)
    # Read as zero demand the same history would forecast clearly lower.
    assert without_mask[1].sum() < 0.85 * with_mask[1].sum()


def test_given_eight_weeks_of_history_when_forecasting_then_the_level_is_unbiased() -> None:
    # A new deployment: every series starts on the same day. Days before a weekday has been
    # seen once must not read as a weekday of no sales (it tripled the first week's
    # deseasonalised values and put the demo's forecasts ~15 % above its sales).
    history = np.stack([_weekly(days=57, level=200.0, seed=s) for s in range(40)])
    point = forecast(history, ForecasterConfig(horizon=28)).point

    weekly_mean = history[:, -28:].mean(axis=1)
    ratio = point.mean(axis=1) / weekly_mean
    assert np.median(ratio) == pytest.approx(1.0, abs=0.03)
    assert point.mean() / history[:, -28:].mean() == pytest.approx(1.0, abs=0.03)


def test_given_weekly_demand_when_forecasting_then_intervals_nest_and_cover_the_point() -> None:
    history = np.stack([_weekly(seed=s) for s in range(30)])
    result = forecast(history, ForecasterConfig(horizon=28))

    lo80, hi80 = result.bounds(0.8)
    lo95, hi95 = result.bounds(0.95)
    assert result.point.shape == (30, 28)
    assert (lo95 <= lo80 + 1e-9).all() and (lo80 <= result.point + 1e-9).all()
    assert (result.point <= hi80 + 1e-9).all() and (hi80 <= hi95 + 1e-9).all()
    assert (lo95 >= 0).all()
    # The weekend lift shows in the forecast: Saturdays above Wednesdays.
    weekday = (np.arange(400, 428)) % 7
    assert result.point[:, weekday >= 5].mean() > 1.3 * result.point[:, weekday == 2].mean()


def test_given_a_hand_computed_case_when_scoring_rmsse_then_it_matches() -> None:
    history = np.array([[np.nan, 0.0, 2.0, 4.0, 2.0]])  # naive diffs from first sale: 2, -2
    actual = np.array([[3.0, 1.0]])
    forecast_ = np.array([[1.0, 1.0]])
    assert rmsse_scale(history)[0] == pytest.approx(4.0)
    assert rmsse(history, actual, forecast_)[0] == pytest.approx(np.sqrt(2.0 / 4.0))


def test_given_past_forecasts_and_actuals_when_computing_bias_then_it_is_hand_computed() -> None:
    archive = pd.DataFrame(
        {
            "sku_id": ["A", "A", "B", "B"],
            "location_id": ["L"] * 4,
            "date": [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 1), date(2024, 3, 9)],
            "forecast_val": [10.0, 12.0, 5.0, 99.0],
        }
    )
    demand = pd.DataFrame(
        {
            "sku_id": ["A", "A", "B"],
            "location_id": ["L"] * 3,
            "date": [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 1)],
            "units_sold": [8, 0, 12],
            "stockout": [False, True, False],  # A on 2 Mar is censored: not compared
        }
    )
    # Compared: A 1 Mar (10 vs 8), B 1 Mar (5 vs 12); B 9 Mar has no actual yet.
    assert forecast_bias_pct(archive, demand) == pytest.approx(100 * (15 - 20) / 20)
    assert forecast_bias_pct(archive.iloc[3:], demand) is None
    assert forecast_bias_pct(archive.iloc[:0], demand) is None


def test_given_a_forecast_row_when_building_the_item_then_keys_numbers_and_ttl_match() -> None:
    now = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    row = ForecastRow("SKU-1", "STORE-9", date(2024, 3, 5), 3.14159, 1.0, 6.5)

    item = forecast_item(row, now=now, run_id="jr_1")

    assert item == {
        "PK": "SKU#SKU-1",
        "SK": "LOC#STORE-9#DATE#2024-03-05",
        "DateSK": "DATE#2024-03-05#LOC#STORE-9",
        "forecast_val": Decimal("3.1416"),
        "confidence_lower": Decimal("1.0"),
        "confidence_upper": Decimal("6.5"),
        "ttl": int((now + timedelta(days=90)).timestamp()),
        "run_id": "jr_1",
        "generated_at": "2024-03-01T12:30:00+00:00",
    }


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 3, 1, 12, 30, tzinfo=UTC), "2024-03-01T12:30:00+00:00"),
        (datetime(2024, 3, 1, 12, 30), "2024-03-01T12:30:00+00:00"),  # naive is UTC
        (
            datetime(2024, 3, 1, 21, 30, tzinfo=timezone(timedelta(hours=9))),
            "2024-03-01T12:30:00+00:00",
        ),
    ],
)
def test_given_a_run_moment_when_stamped_then_iso_8601_in_utc(
    moment: datetime, expected: str
) -> None:
    assert utc_timestamp(moment) == expected


def test_given_glues_job_run_id_when_the_job_runs_then_it_is_the_items_run_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location(
        "forecast_demand", REPO / "glue_jobs" / "forecast_demand.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen: list[str | None] = []

    def run_forecast(**arguments: Any) -> ForecastReport:
        seen.append(arguments["run_id"])
        return ForecastReport(0, 0, 28, None, run_id=str(arguments["run_id"]))

    monkeypatch.setattr(module, "run_forecast", run_forecast)
    required = ["--curated_bucket", "b", "--database", "d", "--forecast_table", "t"]
    assert module.main(["--JOB_NAME", "j", "--JOB_RUN_ID", "jr_abc", *required]) == 0
    assert module.main(required) == 0
    assert seen == ["jr_abc", None]  # without one, run_forecast makes a new id


def test_given_glue_arguments_when_parsing_then_unknown_glue_flags_are_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location(
        "forecast_demand", REPO / "glue_jobs" / "forecast_demand.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    args = parse_glue_args(
        [
            "--curated_bucket",
            "b",
            "--library-set",
            "analytics",
            "--horizon_days=14",
            "--job-bookmark-option",
            "--database",
            "db",
        ]
    )

    assert args == {
        "curated_bucket": "b",
        "library-set": "analytics",
        "horizon_days": "14",
        "job-bookmark-option": "",
        "database": "db",
    }
    assert module.main(["--curated_bucket", "b"]) == 2
    assert capsys.readouterr().err == "missing job arguments: --database, --forecast_table\n"


@pytest.mark.slow
def test_given_the_m5_subset_when_backtesting_then_it_beats_seasonal_naive_and_is_calibrated() -> (
    None
):
    if not M5.is_file():
        pytest.skip(f"M5 subset not found at {M5} (it lives in ../shared/data/m5_subset/)")
    from pipeline.forecasting.backtest import backtest, read_backtest_data

    summary = backtest(read_backtest_data(M5)).summary

    ours = summary["models"]["forecaster"]
    naive = summary["models"]["seasonal_naive"]
    assert summary["series"] == 944
    assert summary["cutoff"] == "2016-04-24"
    assert ours["rmsse"] <= 0.80 * naive["rmsse"]
    assert abs(ours["coverage_80"] - 0.80) <= 0.03
    assert abs(ours["coverage_95"] - 0.95) <= 0.03


def test_given_an_as_of_that_is_not_a_date_when_the_job_starts_then_it_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location(
        "forecast_demand", REPO / "glue_jobs" / "forecast_demand.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    code = module.main(
        ["--curated_bucket", "b", "--database", "d", "--forecast_table", "t", "--as_of", "May 1"]
    )

    assert code == 2
    assert capsys.readouterr().err == "--as_of must be a date (yyyy-mm-dd), got 'May 1'\n"


def test_given_series_in_chunks_when_forecasting_then_results_equal_one_pass() -> None:
    rng = np.random.default_rng(3)
    history = rng.poisson(rng.uniform(0.1, 8.0, (250, 1)), (250, 300)).astype(np.float64)
    history[rng.random(history.shape) < 0.05] = np.nan  # censored days
    history[:20, :120] = np.nan  # late launches

    one_pass = forecast(history, ForecasterConfig(horizon=14))
    chunked = forecast(history, ForecasterConfig(horizon=14, chunk_series=64))

    np.testing.assert_allclose(chunked.point, one_pass.point, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked.weights, one_pass.weights, rtol=1e-12, atol=1e-12)
    for level in (0.8, 0.95):
        for got, want in zip(chunked.bounds(level), one_pass.bounds(level), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert chunked.model == one_pass.model


def test_given_more_series_than_the_calibration_sample_when_forecasting_then_bounds_hold() -> None:
    rng = np.random.default_rng(4)
    history = rng.poisson(3.0, (90, 200)).astype(np.float64)

    result = forecast(history, ForecasterConfig(horizon=7, chunk_series=32, calibration_series=30))

    lower, upper = result.bounds(0.8)
    assert np.isfinite(lower).all() and np.isfinite(upper).all()
    assert (lower <= result.point).all() and (result.point <= upper).all()
    assert (upper > lower).any()  # calibrated from the sample, not collapsed onto the point
