"""The intervals' calibration: groups of series, the adapted level, the previous method."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.forecasting.conformal import Conformal, adapted_range
from pipeline.forecasting.forecaster import ForecasterConfig, forecast

Matrix = npt.NDArray[np.float64]
LEVELS = (0.8, 0.95)


def _coverage(actual: Matrix, bounds: tuple[Matrix, Matrix], rows: Any = slice(None)) -> float:
    lo, hi = bounds
    return float(np.mean((actual[rows] >= lo[rows]) & (actual[rows] <= hi[rows])))


def _counts(
    rng: np.random.Generator, level: Matrix, dispersion: Matrix, shape: tuple[int, ...]
) -> Matrix:
    """Negative-binomial counts with mean ``level`` and ``var = level + dispersion *
    level**2`` per series (broadcast over the trailing axes of ``shape``)."""
    mean = np.broadcast_to(level.reshape(-1, *([1] * (len(shape) - 1))), shape)
    k = np.broadcast_to(dispersion.reshape(-1, *([1] * (len(shape) - 1))), shape)
    gamma = rng.gamma(1 / k, mean * k)
    return rng.poisson(gamma).astype(np.float64)


def test_given_movers_that_err_unalike_at_one_level_when_calibrating_then_each_is_covered() -> None:
    # Slow movers having a good spell and fast movers having a slow one are forecast at the
    # same levels, but the fast ones are overdispersed: bins of forecast level alone cover
    # one group too often and the other too rarely.
    rng = np.random.default_rng(5)
    series = 900
    level = rng.uniform(1.0, 4.0, series)
    fast = np.arange(series) >= series // 2
    sales = np.where(fast, 6.0, 1.0) + rng.uniform(0, 0.5, series)  # long-run mean sales
    dispersion = np.where(fast, 0.6, 1e-6)
    past = np.broadcast_to(level[:, None, None], (series, 12, 14)).copy()
    actual = _counts(rng, level, dispersion, past.shape)
    future = _counts(rng, level, dispersion, (series, 14))
    point = np.broadcast_to(level[:, None], (series, 14))

    binned = Conformal.fit(past, actual, LEVELS, method="binned").intervals(point)
    grouped = Conformal.fit(past, actual, LEVELS, sales=sales).intervals(point, sales)

    for group in (fast, ~fast):
        for level_ in LEVELS:
            miss = abs(_coverage(future, grouped[level_], group) - level_)
            before = abs(_coverage(future, binned[level_], group) - level_)
            assert miss < 0.03
            assert miss < before


def test_given_errors_that_grow_over_the_origins_when_calibrating_then_the_level_is_raised() -> (
    None
):
    rng = np.random.default_rng(6)
    series, origins, horizon = 400, 16, 14
    # The spread of the errors grows with each origin: the later weeks differ.
    spread = np.linspace(1.0, 2.0, origins)[None, :, None]
    past = np.full((series, origins, horizon), 20.0)
    actual = past + rng.normal(0, 1, past.shape) * spread * np.sqrt(20.5)
    sales = np.full(series, 20.0)

    adaptive = Conformal.fit(past, actual, LEVELS, sales=sales)
    binned = Conformal.fit(past, actual, LEVELS, method="binned")

    assert adaptive.levels[0.8] > 0.8
    assert adaptive.levels[0.95] > 0.95
    # The next window is as spread as the last origins: the adapted intervals come closer.
    future = 20.0 + rng.normal(0, 1, (series, horizon)) * 2.0 * np.sqrt(20.5)
    point = np.full((series, horizon), 20.0)
    for level in LEVELS:
        got = _coverage(future, adaptive.intervals(point, sales)[level])
        before = _coverage(future, binned.intervals(point)[level])
        assert abs(got - level) < abs(before - level)


def test_given_exchangeable_errors_when_calibrating_then_the_level_barely_moves() -> None:
    rng = np.random.default_rng(7)
    past = np.full((500, 16, 14), 10.0)
    actual = past + rng.normal(0, 3, past.shape)

    conformal = Conformal.fit(past, actual, LEVELS, sales=np.full(500, 10.0))

    assert conformal.levels[0.8] == pytest.approx(0.8, abs=0.01)
    assert conformal.levels[0.95] == pytest.approx(0.95, abs=0.005)


def test_given_a_drift_beyond_reason_when_calibrating_then_the_level_stays_in_its_range() -> None:
    rng = np.random.default_rng(8)
    spread = np.concatenate([np.full(4, 0.01), np.full(12, 100.0)])[None, :, None]
    past = np.full((300, 16, 7), 5.0)
    actual = np.maximum(past + rng.normal(0, 1, past.shape) * spread, 0.0)

    conformal = Conformal.fit(past, actual, LEVELS, sales=np.full(300, 5.0))

    for level in LEVELS:
        low, high = adapted_range(level)
        assert low <= conformal.levels[level] <= high
    assert conformal.levels[0.8] == adapted_range(0.8)[1]


def test_given_the_binned_method_when_calibrating_then_it_pools_every_error_at_the_level() -> None:
    rng = np.random.default_rng(9)
    past = rng.uniform(0, 5, (50, 8, 7))
    actual = rng.poisson(past).astype(np.float64)

    as_3d = Conformal.fit(past, actual, LEVELS, sales=past.mean(axis=(1, 2)), method="binned")
    flat = Conformal.fit(past.ravel(), actual.ravel(), LEVELS)  # one dimension: pooled

    assert as_3d.levels == {0.8: 0.8, 0.95: 0.95}
    assert len(as_3d.tables) == 1
    for level in LEVELS:
        np.testing.assert_array_equal(
            as_3d.intervals(past[:, 0])[level][1], flat.intervals(past[:, 0])[level][1]
        )


def test_given_an_unknown_method_when_calibrating_then_it_says_which_exist() -> None:
    with pytest.raises(ValueError, match="adaptive"):
        Conformal.fit(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), LEVELS, method="magic")


def test_given_the_config_switch_when_forecasting_then_both_methods_bound_the_same_point() -> None:
    rng = np.random.default_rng(10)
    history = rng.poisson(rng.uniform(0.2, 6.0, (300, 1)), (300, 260)).astype(np.float64)

    adaptive = forecast(history, ForecasterConfig(horizon=14))
    binned = forecast(history, ForecasterConfig(horizon=14, interval_method="binned"))

    np.testing.assert_array_equal(adaptive.point, binned.point)
    for result in (adaptive, binned):
        for level in LEVELS:
            lower, upper = result.bounds(level)
            assert (lower <= result.point).all() and (result.point <= upper).all()
    assert any(
        not np.array_equal(adaptive.bounds(level)[1], binned.bounds(level)[1]) for level in LEVELS
    )


def test_given_levels_adapted_across_each_other_when_calibrating_then_intervals_stay_nested() -> (
    None
):
    # The 80 % level raised to its top (95 %) and the 95 % one lowered would cross.
    rng = np.random.default_rng(11)
    spread = np.concatenate([np.full(4, 0.01), np.full(12, 100.0)])[None, :, None]
    past = np.full((300, 16, 7), 5.0)
    actual = np.maximum(past + rng.normal(0, 1, past.shape) * spread, 0.0)
    sales = np.full(300, 5.0)

    conformal = Conformal.fit(past, actual, LEVELS, sales=sales)
    bounds = conformal.intervals(past[:, 0], sales)

    assert conformal.levels[0.95] >= conformal.levels[0.8]
    assert (bounds[0.95][0] <= bounds[0.8][0]).all()
    assert (bounds[0.8][1] <= bounds[0.95][1]).all()
