"""The batch forecaster: candidate models, holdout-validated blend, conformal intervals.

1. Every candidate (SES at several smoothing constants, TSB for intermittent demand, moving
   averages) runs on the weekday-deseasonalised history in one causal pass (see models).
2. Each series blends the candidates with weights ``1 / MSE**2``, the MSE measured on
   rolling-origin holdouts (weekly origins, each forecasting the full horizon) over the last
   ``validation_weeks`` weeks, so the rule is validated out of sample rather than in-fit.
3. Intervals are conformal: the blended model's signed errors from ``calibration_origins``
   daily rolling origins, divided by ``sqrt(forecast + 0.5)`` (count noise), give one
   empirical quantile per horizon step pooled over all series; the interval at level ``L``
   is ``forecast + q_h((1 -+ L)/2) * sqrt(forecast + 0.5)``, clipped at 0. Calibrated by
   construction: it is what this very model's past errors at that step covered.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.forecasting.models import (
    WEEK,
    SeasonalIndex,
    deseasonalise,
    moving_average_paths,
    seasonal_naive,
    ses_paths,
    tsb_paths,
)

Matrix = npt.NDArray[np.float64]

SES_ALPHAS = (0.01, 0.02, 0.035, 0.05, 0.1, 0.2)
TSB_PAIRS = ((0.05, 0.05), (0.1, 0.05), (0.1, 0.1), (0.2, 0.1))
MA_WINDOWS = (28, 56, 91)
POISSON_OFFSET = 0.5
#: Daily units above this are no retail series (the contract caps one event at 1e9 units):
#: clipping there keeps squared errors and their sums far from float64 overflow, which
#: would otherwise turn a blend weight, and so the whole series' forecast, into NaN.
MAX_DAILY_UNITS = 1e12
CANDIDATES = (
    *(f"ses_{a}" for a in SES_ALPHAS),
    *(f"tsb_{s}_{p}" for s, p in TSB_PAIRS),
    *(f"ma_{w}" for w in MA_WINDOWS),
)


@dataclass(frozen=True)
class ForecasterConfig:
    """Tuning of the forecaster (defaults chosen on rolling holdouts, see the README)."""

    horizon: int = 28
    fit_days: int = 728
    seasonal: SeasonalIndex = field(default_factory=lambda: SeasonalIndex(weeks=52, shrink=500))
    validation_weeks: int = 8
    calibration_origins: int = 182
    levels: tuple[float, ...] = (0.8, 0.95)
    #: Series forecast at once: peak memory follows this, not the number of series.
    chunk_series: int = 2048
    #: Series whose errors calibrate the intervals (all of them up to this many).
    calibration_series: int = 4096


@dataclass(frozen=True)
class Forecast:
    """Forecasts for ``series x horizon``: point, intervals per level, the chosen model."""

    point: Matrix
    intervals: dict[float, tuple[Matrix, Matrix]]
    model: list[str]
    weights: Matrix

    def bounds(self, level: float) -> tuple[Matrix, Matrix]:
        return self.intervals[level]


def _candidate_paths(deseasonalised: Matrix) -> Matrix:
    sizes, probs = zip(*TSB_PAIRS, strict=True)
    return np.concatenate(
        [
            ses_paths(deseasonalised, SES_ALPHAS),
            tsb_paths(deseasonalised, sizes, probs),
            moving_average_paths(deseasonalised, MA_WINDOWS),
        ]
    )


def _from_origins(
    levels: Matrix, index: Matrix, origins: npt.NDArray[np.int64], horizon: int
) -> Matrix:
    """Forecasts ``(..., series, origins, horizon)`` made at the end of each origin day."""
    steps = np.arange(1, horizon + 1)
    weekday = (origins[:, None] + steps[None, :]) % WEEK
    weights = index[:, weekday, origins[:, None]]
    return np.asarray(levels[..., origins][..., None] * weights, dtype=np.float64)


def _actuals(y: Matrix, origins: npt.NDArray[np.int64], horizon: int) -> Matrix:
    return y[:, origins[:, None] + np.arange(1, horizon + 1)[None, :]]


def forecast(history: Matrix, config: ForecasterConfig | None = None) -> Forecast:
    """Forecast the next ``config.horizon`` days of every row of ``history``.

    ``history`` is ``(series, days)``, NaN where demand is unknown (before launch, or a
    censored stockout day); the last column is the last observed day.
    """
    # All-NaN slices (series not launched yet in a window) are expected and handled.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _forecast(history, config)


def prepare(history: Matrix, config: ForecasterConfig) -> Matrix:
    """The part of ``history`` the models fit: the last ``fit_days``, clipped to the range
    whose squared errors cannot overflow."""
    return np.clip(
        np.asarray(history, dtype=np.float64)[:, -config.fit_days :],
        -MAX_DAILY_UNITS,
        MAX_DAILY_UNITS,
    )


def calibration_sample(ranks: npt.NDArray[np.int64], series: int, config: ForecasterConfig) -> Any:
    """Which of the series at ``ranks`` (of ``series`` in all) calibrate the intervals:
    every one up to ``calibration_series``, beyond that an evenly spaced sample, so that
    memory stays flat."""
    stride = -(-series // config.calibration_series) if series else 1
    return ranks % stride == 0


def pooled_sum(parts: list[tuple[Matrix, Matrix]]) -> tuple[Matrix, Matrix] | None:
    """The pooled weekday index of several chunks from their parts (``None``: one chunk,
    which pools over itself)."""
    if len(parts) <= 1:
        return None
    return np.sum([p[0] for p in parts], axis=0), np.sum([p[1] for p in parts], axis=0)


def _forecast(history: Matrix, config: ForecasterConfig | None) -> Forecast:
    config = config or ForecasterConfig()
    y = prepare(history, config)
    n = y.shape[0]
    chunks = [slice(s, min(s + config.chunk_series, n)) for s in range(0, n, config.chunk_series)]
    # The only quantities shared across series are the pooled weekday index and the
    # conformal quantiles; everything else is per series, so memory follows the chunk.
    pooled = (
        pooled_sum([config.seasonal.pooled_parts(y[c]) for c in chunks])
        if len(chunks) > 1
        else None
    )
    fits = [
        fit_chunk(
            y[c], pooled, config, sample=calibration_sample(np.arange(c.start, c.stop), n, config)
        )
        for c in chunks
    ]
    scaled = (
        np.concatenate([f.scaled for f in fits])
        if fits
        else np.full((0, 0, config.horizon), np.nan)
    )
    quantiles = interval_quantiles(scaled, config)
    return combine([f.forecast(quantiles) for f in fits], config)


def combine(parts: list[Forecast], config: ForecasterConfig) -> Forecast:
    """The forecasts of consecutive chunks of series as one."""
    if not parts:
        empty = np.zeros((0, config.horizon))
        return Forecast(
            point=empty,
            intervals=dict.fromkeys(config.levels, (empty, empty)),
            model=[],
            weights=np.zeros((len(CANDIDATES), 0)),
        )
    return Forecast(
        point=np.concatenate([p.point for p in parts]),
        intervals={
            level: (
                np.concatenate([p.intervals[level][0] for p in parts]),
                np.concatenate([p.intervals[level][1] for p in parts]),
            )
            for level in config.levels
        },
        model=[m for p in parts for m in p.model],
        weights=np.concatenate([p.weights for p in parts], axis=1),
    )


@dataclass(frozen=True)
class ChunkFit:
    """One chunk of series fitted: what its forecast needs once the intervals are known."""

    point: Matrix  # (series, horizon)
    weights: Matrix  # (candidates, series)
    scaled: Matrix  # (sampled series, origins, horizon): calibration errors

    def forecast(self, quantiles: IntervalQuantiles) -> Forecast:
        chosen = np.argmax(self.weights, axis=0)
        return Forecast(
            point=self.point,
            intervals=intervals(self.point, quantiles),
            model=[CANDIDATES[k] for k in chosen],
            weights=self.weights,
        )


def fit_chunk(
    y: Matrix,
    pooled: tuple[Matrix, Matrix] | None,
    config: ForecasterConfig,
    *,
    sample: npt.NDArray[np.bool_],
) -> ChunkFit:
    """Blend, point forecasts and calibration errors of one chunk of series (``pooled``: the
    weekday index parts summed over every chunk, ``None`` when this is the only one)."""
    horizon = config.horizon
    days = y.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        index = config.seasonal.compute(y, pooled)
        paths = _candidate_paths(deseasonalise(y, index))

        validation = days - 1 - horizon - WEEK * np.arange(config.validation_weeks)
        validation = validation[validation >= 0]
        errors = _from_origins(paths, index, validation, horizon) - _actuals(y, validation, horizon)
        mse = np.nanmean(errors**2, axis=(2, 3))
        del errors
    # A series without validation data has NaN for every candidate, so any common value
    # gives it equal weights.
    mse = np.where(np.isfinite(mse), mse, np.nanmax(mse) if np.isfinite(mse).any() else 1.0)
    inverse = 1.0 / np.maximum(mse, 1e-9) ** 2
    weights = inverse / inverse.sum(axis=0, keepdims=True)
    blended = np.einsum("mnt,mn->nt", paths, weights)
    del paths

    last = np.array([days - 1])
    point = np.maximum(_from_origins(blended, index, last, horizon)[:, 0, :], 0.0)
    scaled = _scaled_errors(y[sample], blended[sample], index[sample], config)
    return ChunkFit(point=point, weights=weights, scaled=scaled)


def _scaled_errors(y: Matrix, blended: Matrix, index: Matrix, config: ForecasterConfig) -> Matrix:
    """The blended model's rolling-origin errors over ``sqrt(level)``: (series, origins, h)."""
    horizon = config.horizon
    days = y.shape[1]
    origins = days - 1 - horizon - np.arange(config.calibration_origins)
    origins = origins[origins >= 0]
    past = _from_origins(blended, index, origins, horizon)
    # Errors of count data grow like sqrt(level); scaling by it lets one pooled quantile per
    # horizon step fit every series and follow a level that moved since calibration.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(
            (_actuals(y, origins, horizon) - past)
            / np.sqrt(np.maximum(past, 0.0) + POISSON_OFFSET),
            dtype=np.float64,
        )


#: Per interval level, the scaled-error quantiles below and above the point, per step.
IntervalQuantiles = dict[float, tuple[Matrix, Matrix]]


def interval_quantiles(scaled: Matrix, config: ForecasterConfig) -> IntervalQuantiles:
    """The conformal quantiles of the calibration errors pooled over the sampled series."""
    out: IntervalQuantiles = {}
    for level in config.levels:
        # A planner reads the interval as "around the forecast": when past errors were
        # one-sided the interval still has to contain the point it is published with.
        out[level] = (
            np.minimum(_step_quantiles(scaled, (1 - level) / 2), 0.0),
            np.maximum(_step_quantiles(scaled, (1 + level) / 2), 0.0),
        )
    return out


def intervals(point: Matrix, quantiles: IntervalQuantiles) -> dict[float, tuple[Matrix, Matrix]]:
    """The bounds around ``point`` at each level."""
    width = np.sqrt(point + POISSON_OFFSET)
    return {
        level: (
            _finite_clip(point + lo[None, :] * width, 0.0, point),
            _finite_clip(point + hi[None, :] * width, point, np.finfo(np.float64).max),
        )
        for level, (lo, hi) in quantiles.items()
    }


def _step_quantiles(scaled: Matrix, q: float) -> Matrix:
    """The ``q`` quantile of the scaled errors per horizon step, ``(horizon,)``.

    A step can have no known error while others have some: when every actual it would be
    scored on is censored or before launch (a history that starts with stockout days).
    Such a step takes the quantile pooled over all steps; with no known error at all the
    interval collapses onto the point (nothing says how wide it should be).
    """
    horizon = scaled.shape[-1]
    errors = scaled.reshape(-1, horizon)
    known = np.isfinite(errors)
    if not known.any():
        return np.zeros(horizon)
    pooled = float(np.quantile(errors[known], q))
    per_step = np.full(horizon, pooled)
    has_errors = known.any(axis=0)
    if has_errors.any():
        masked = np.where(known[:, has_errors], errors[:, has_errors], np.nan)
        per_step[has_errors] = np.nanquantile(masked, q, axis=0)
    return per_step


def _finite_clip(values: Matrix, low: Matrix | float, high: Matrix | float) -> Matrix:
    """``values`` clipped to ``[low, high]`` with overflow (inf) read as the bound."""
    clipped = np.clip(np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=0.0), low, high)
    return np.asarray(clipped, dtype=np.float64)


def seasonal_naive_forecast(history: Matrix, config: ForecasterConfig | None = None) -> Forecast:
    """The seasonal-naive baseline with the same conformal intervals (for comparison)."""
    config = config or ForecasterConfig()
    y = np.asarray(history, dtype=np.float64)
    point = seasonal_naive(y, config.horizon)
    return Forecast(
        point=point,
        intervals={},
        model=["seasonal_naive"] * y.shape[0],
        weights=np.ones((1, y.shape[0])),
    )
