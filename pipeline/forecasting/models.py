"""Forecasting models vectorised over a series x day matrix (numpy, no per-series loop).

Every model here is a *level path*: one causal pass over the days yields, for each series
and each day ``t``, the deseasonalised level a forecast made at the end of day ``t`` would
use. A forecast from origin ``t`` for day ``t + h`` is that level times the day-of-week index
known at ``t``. One pass therefore gives the final forecast, the holdout forecasts that pick
the model and the rolling-origin forecasts that calibrate the intervals, with no refits.

Missing days (NaN: before launch, or censored because the shelf was empty) never update a
state: a stockout day says nothing about demand, so it neither pulls the level to zero nor
counts as a zero in the intermittent-demand probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]

WEEK = 7


@dataclass(frozen=True)
class SeasonalIndex:
    """Causal day-of-week indices: ``index[:, d, t]`` is series' weight of weekday ``d``
    (``d`` = day position mod 7) estimated from the ``weeks`` weeks ending on day ``t``,
    shrunk toward the index pooled over all series (weight ``units / (units + shrink)``)."""

    weeks: int = 16
    shrink: float = 20.0
    floor: float = 0.2

    def pooled_parts(self, y: Matrix) -> tuple[Matrix, Matrix]:
        """Numerator and denominator of the pooled index, summed over ``y``'s series.

        Both add up over disjoint groups of series, so a forecaster working through
        series in chunks gets the same pooled index as one pass over all of them."""
        _, day_mean, level = self._day_means(y)
        return _pool(day_mean, level)

    def compute(self, y: Matrix, pooled_parts: tuple[Matrix, Matrix] | None = None) -> Matrix:
        """The indices of ``y``'s series, shrunk toward the pool ``pooled_parts`` (summed
        over every series being forecast) or, without it, toward ``y``'s own pool."""
        sums, day_mean, level = self._day_means(y)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = day_mean / level
            numerator, denominator = (
                pooled_parts if pooled_parts is not None else _pool(day_mean, level)
            )
            pooled = numerator / denominator
        pooled = np.where(np.isfinite(pooled), pooled, 1.0)
        units = sums.sum(axis=1, keepdims=True)
        weight = units / (units + self.shrink)
        index = np.where(np.isfinite(ratio), weight * ratio + (1 - weight) * pooled, pooled)
        # A floor keeps deseasonalising finite when a weekday had no sales in the window.
        index = np.maximum(np.nan_to_num(index, nan=1.0), self.floor)
        return np.asarray(index / index.mean(axis=1, keepdims=True), dtype=np.float64)

    def _day_means(self, y: Matrix) -> tuple[Matrix, Matrix, Matrix]:
        """Trailing unit sums ``(series, 7, days)``, mean per weekday and its mean level."""
        n, days = y.shape
        known = ~np.isnan(y)
        values = np.where(known, y, 0.0)
        window = self.weeks * WEEK
        sums = np.zeros((n, WEEK, days))
        counts = np.zeros((n, WEEK, days))
        weekday = np.arange(days) % WEEK
        for d in range(WEEK):
            on_day = weekday == d
            sums[:, d] = _trailing_sum(np.where(on_day, values, 0.0), window)
            counts[:, d] = _trailing_sum((on_day & known).astype(np.float64), window)
        with np.errstate(divide="ignore", invalid="ignore"):
            day_mean = np.where(counts > 0, sums / counts, np.nan)
        # Until a series has seen every weekday in the window, its weekday means say
        # nothing about the week's shape (the mean of the weekdays seen is no level), so it
        # has no index of its own and adds nothing to the pool; a pool no series adds to
        # is flat. Otherwise a weekday nobody has seen yet pools to 0, is floored, and
        # triples a new deployment's first week once deseasonalised.
        complete = (counts > 0).all(axis=1, keepdims=True)
        day_mean = np.where(complete, day_mean, np.nan)
        level = day_mean.mean(axis=1, keepdims=True)  # NaN where not complete
        return sums, day_mean, level


def _pool(day_mean: Matrix, level: Matrix) -> tuple[Matrix, Matrix]:
    """Weekday means and levels summed over series (a weekday no series has seen sums to 0
    over a level of 0: NaN, no pooled index)."""
    return np.nansum(day_mean, axis=0, keepdims=True), np.nansum(level, axis=0, keepdims=True)


def _trailing_sum(x: Matrix, window: int) -> Matrix:
    """Sum of the last ``window`` columns up to and including each column."""
    cumulative = np.cumsum(x, axis=-1)
    shifted = np.zeros_like(cumulative)
    shifted[..., window:] = cumulative[..., :-window]
    return np.asarray(cumulative - shifted, dtype=np.float64)


def deseasonalise(y: Matrix, index: Matrix) -> Matrix:
    """``y`` divided by the weekday index known the day before (causal)."""
    days = y.shape[1]
    previous = np.concatenate([np.ones_like(index[:, :, :1]), index[:, :, :-1]], axis=2)
    today = previous[:, np.arange(days) % WEEK, np.arange(days)]
    return np.asarray(y / today, dtype=np.float64)


def _initial_level(y: Matrix, days: int = 56) -> Matrix:
    """Mean of each series' first ``days`` known values (0 when it has none)."""
    known = ~np.isnan(y)
    rank = np.cumsum(known, axis=1)
    first = known & (rank <= days)
    total = np.where(first, y, 0.0).sum(axis=1)
    count = first.sum(axis=1)
    return np.asarray(np.where(count > 0, total / np.maximum(count, 1), 0.0), dtype=np.float64)


def ses_paths(y: Matrix, alphas: npt.ArrayLike) -> Matrix:
    """Simple exponential smoothing levels, shape ``(len(alphas), series, days)``."""
    a = np.asarray(alphas, dtype=np.float64)[:, None]
    level = np.broadcast_to(_initial_level(y), (a.shape[0], y.shape[0])).copy()
    out = np.empty((a.shape[0], *y.shape))
    for t in range(y.shape[1]):
        obs = y[:, t]
        known = ~np.isnan(obs)
        level = np.where(known, level + a * (np.nan_to_num(obs) - level), level)
        out[:, :, t] = level
    return out


def tsb_paths(y: Matrix, alpha_size: npt.ArrayLike, alpha_prob: npt.ArrayLike) -> Matrix:
    """Teunter-Syntetos-Babai levels (probability x size), one per ``(alpha_size[i],
    alpha_prob[i])`` pair, shape ``(pairs, series, days)``. Sizes update on demand days only,
    the demand probability on every known day (censored days update neither)."""
    a_size = np.asarray(alpha_size, dtype=np.float64)[:, None]
    a_prob = np.asarray(alpha_prob, dtype=np.float64)[:, None]
    pairs = a_size.shape[0]
    known_all = ~np.isnan(y)
    positive = np.where(known_all, y, 0.0) > 0
    init_size = _initial_level(np.where(positive, y, np.nan))
    init_prob = _initial_level(np.where(known_all, positive.astype(np.float64), np.nan))
    size = np.broadcast_to(init_size, (pairs, y.shape[0])).copy()
    prob = np.broadcast_to(init_prob, (pairs, y.shape[0])).copy()
    out = np.empty((pairs, *y.shape))
    for t in range(y.shape[1]):
        obs = np.nan_to_num(y[:, t])
        known = known_all[:, t]
        demand = positive[:, t]
        size = np.where(demand, size + a_size * (obs - size), size)
        prob = np.where(known, prob + a_prob * (demand - prob), prob)
        out[:, :, t] = prob * size
    return out


def moving_average_paths(y: Matrix, windows: npt.ArrayLike) -> Matrix:
    """Mean of the known values of the last ``w`` days, one path per window."""
    known = ~np.isnan(y)
    values = np.where(known, y, 0.0)
    out = []
    for w in np.asarray(windows, dtype=np.int64):
        total = _trailing_sum(values, int(w))
        count = _trailing_sum(known.astype(np.float64), int(w))
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(count > 0, total / count, np.nan))
    paths = np.stack(out)
    # Before a series has any known day, carry its first level backwards.
    return np.asarray(np.where(np.isnan(paths), 0.0, paths), dtype=np.float64)


def seasonal_naive(y: Matrix, horizon: int, season: int = WEEK) -> Matrix:
    """The last known week repeated: ``y[t + h] = y[t + h - 7k]`` (NaN read as 0)."""
    last = np.nan_to_num(y[:, -season:])
    return np.asarray(np.tile(last, (1, -(-horizon // season)))[:, :horizon], dtype=np.float64)
