"""The M5 scoring protocol over a series x day matrix: RMSSE, MASE, bias, coverage, pinball.

Every function takes the training history (``history``, NaN where unknown: before launch or
censored), the actuals of the held-out days and the forecasts, all as ``(series, days)``
arrays, and returns one value per series; :func:`score` averages them as M5 does (an
unweighted mean over series, here, as in the subset's README).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]


def _naive_differences(history: Matrix) -> Matrix:
    """One-step naive errors from each series' first non-zero sale (NaN elsewhere)."""
    started = np.cumsum(np.nan_to_num(history) > 0, axis=1) > 0
    trimmed = np.where(started, history, np.nan)
    return np.diff(trimmed, axis=1)


def rmsse_scale(history: Matrix) -> Matrix:
    """M5's RMSSE scale: mean squared one-step naive error from the first non-zero sale."""
    diffs = _naive_differences(history)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nanmean(diffs**2, axis=1), dtype=np.float64)


def mase_scale(history: Matrix) -> Matrix:
    """Mean absolute one-step naive error from the first non-zero sale (MASE, pinball)."""
    diffs = _naive_differences(history)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nanmean(np.abs(diffs), axis=1), dtype=np.float64)


def _safe_divide(numerator: Matrix, denominator: Matrix) -> Matrix:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    return np.where(np.isfinite(out), out, np.nan)


def rmsse(history: Matrix, actual: Matrix, forecast: Matrix) -> Matrix:
    """Root mean squared scaled error per series (NaN where the scale is 0 or unknown)."""
    mse = np.nanmean((actual - forecast) ** 2, axis=1)
    return np.sqrt(_safe_divide(mse, rmsse_scale(history)))


def mase(history: Matrix, actual: Matrix, forecast: Matrix) -> Matrix:
    """Mean absolute scaled error per series."""
    return _safe_divide(np.nanmean(np.abs(actual - forecast), axis=1), mase_scale(history))


def bias_pct(actual: Matrix, forecast: Matrix) -> float:
    """``100 * (sum forecast - sum actual) / sum actual`` over every series and day."""
    known = ~np.isnan(actual)
    total = float(np.sum(actual[known]))
    if total == 0:
        return 0.0
    return 100.0 * (float(np.sum(forecast[known])) - total) / total


def coverage(actual: Matrix, lower: Matrix, upper: Matrix) -> float:
    """Share of known actuals inside ``[lower, upper]`` (bounds included)."""
    known = ~np.isnan(actual)
    inside = (actual >= lower) & (actual <= upper)
    return float(np.mean(inside[known]))


def pinball(history: Matrix, actual: Matrix, quantile_forecast: Matrix, q: float) -> Matrix:
    """Scaled pinball loss at quantile ``q`` per series (M5 uncertainty's scaling)."""
    diff = actual - quantile_forecast
    loss = np.nanmean(np.maximum(q * diff, (q - 1.0) * diff), axis=1)
    return _safe_divide(loss, mase_scale(history))


def thirds(history: Matrix) -> npt.NDArray[np.int64]:
    """Each series' third (0 slowest .. 2 fastest) by its mean known daily sales."""
    with np.errstate(invalid="ignore"):
        mean = np.nan_to_num(np.nanmean(history, axis=1))
    rank = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
    return np.asarray(rank * 3 // max(len(mean), 1), dtype=np.int64)


def coverage_by_third(
    history: Matrix, actual: Matrix, intervals: dict[float, tuple[Matrix, Matrix]]
) -> dict[str, list[float]]:
    """Coverage of each interval level in each third of series by mean sales (slowest
    first): an average over every series can hide slow sellers covered too often and fast
    ones too rarely."""
    third = thirds(history)
    return {
        f"{round(level * 100)}": [
            round(coverage(actual[third == k], lo[third == k], hi[third == k]), 4) for k in range(3)
        ]
        for level, (lo, hi) in intervals.items()
    }


@dataclass(frozen=True)
class Score:
    """Mean scores over series of one model on one holdout."""

    rmsse: float
    mase: float
    bias_pct: float
    coverage_80: float | None
    coverage_95: float | None
    pinball: float | None
    series: int
    #: Scaled pinball loss at each interval's two quantiles (0.1/0.9, 0.025/0.975).
    pinball_80: float | None = None
    pinball_95: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def score(
    history: Matrix,
    actual: Matrix,
    forecast: Matrix,
    intervals: dict[float, tuple[Matrix, Matrix]] | None = None,
) -> Score:
    """Score one model: mean RMSSE and MASE over series, bias, and, given ``intervals``
    (level -> (lower, upper)), coverage of the 80 % and 95 % intervals and the mean scaled
    pinball loss over their four quantiles (0.025, 0.1, 0.9, 0.975)."""
    intervals = intervals or {}
    cov = {level: coverage(actual, lo, hi) for level, (lo, hi) in intervals.items()}
    per_level = {
        level: [
            pinball(history, actual, bound, q)
            for bound, q in ((lo, (1 - level) / 2), (hi, (1 + level) / 2))
        ]
        for level, (lo, hi) in intervals.items()
    }
    losses = [loss for pair in per_level.values() for loss in pair]

    def level_loss(level: float) -> float | None:
        pair = per_level.get(level)
        return float(np.nanmean(np.mean(pair, axis=0))) if pair else None

    return Score(
        pinball_80=level_loss(0.8),
        pinball_95=level_loss(0.95),
        rmsse=float(np.nanmean(rmsse(history, actual, forecast))),
        mase=float(np.nanmean(mase(history, actual, forecast))),
        bias_pct=bias_pct(actual, forecast),
        coverage_80=cov.get(0.8),
        coverage_95=cov.get(0.95),
        pinball=float(np.nanmean(np.mean(losses, axis=0))) if losses else None,
        series=int(actual.shape[0]),
    )
