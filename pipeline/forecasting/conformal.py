"""Conformal intervals per group of series, per bin of forecast level, at an adapted level.

The scaled errors ``(actual - forecast) / sqrt(forecast + 0.5)`` of the published model at
rolling origins calibrate the intervals; three things keep them honest on days they were
not calibrated on (``method="adaptive"``, the default):

1. **Bins of forecast level.** Pooled over every series, one quantile of the errors is too
   wide for slow sellers and too narrow for fast ones: the spread of count demand depends
   on its level in a way one ``sqrt(level)`` scaling does not fully remove. The calibration
   forecasts are cut into bins by their level (quantiles of the calibration forecasts, so
   each bin has enough errors), each with its own empirical quantiles.
2. **Groups of series by mean daily sales** (slow, middle and fast movers: Mondrian
   conformal). At one forecast level a fast seller having a slow day and a slow seller
   having a good one do not err alike; bins alone covered slow movers too often and fast
   ones too rarely. Each group with enough errors for every bin has its own bins.
3. **A level adapted on the calibration origins themselves, in time order.** The origins
   are cut into consecutive blocks; the table fitted on the blocks before each block is
   scored on it, as the published table will be scored on the days after the last origin.
   When those forecasts were covered less (or more) often than stated, the quantiles are
   taken at a level raised (or lowered) by the difference: the shortfall a table shows
   when the weeks it covers differ from those it was fitted on, and the excess of discrete
   (intermittent) demand, whose many equal errors make an in-sample quantile cover more
   than its level, are both measured rather than assumed away (adaptive conformal
   inference, one step, on the calibration errors).

``method="binned"`` is the previous calibration (1. alone), kept for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]

POISSON_OFFSET = 0.5
#: Bins by forecast level, fewer when there are not ``MIN_PER_BIN`` errors for each.
BINS = 10
MIN_PER_BIN = 400
#: Groups of series by mean daily sales; a group calibrates alone only with enough errors
#: for every bin, otherwise the groups are pooled.
GROUPS = 3
MIN_PER_GROUP = BINS * MIN_PER_BIN
#: Consecutive blocks of calibration origins the adapted level is measured on (fewer
#: origins than this: no adaptation).
BLOCKS = 4
METHODS = ("adaptive", "binned")


def _width(forecast: Matrix) -> Matrix:
    return np.asarray(np.sqrt(np.maximum(forecast, 0.0) + POISSON_OFFSET), dtype=np.float64)


def adapted_range(level: float) -> tuple[float, float]:
    """How far the adapted level may move: half the nominal miss rate down, three quarters
    of it up (an 80 % interval is taken at 70 .. 95 %, a 95 % one at 92.5 .. 98.75 %)."""
    return level - (1 - level) / 2, 1 - (1 - level) / 4


@dataclass(frozen=True)
class Table:
    """Per quantile level, the scaled-error quantiles below and above the point, per bin
    of forecast level (``edges``: the levels between bins)."""

    edges: Matrix
    quantiles: dict[float, tuple[Matrix, Matrix]]

    @classmethod
    def fit(cls, f: Matrix, e: Matrix, levels: tuple[float, ...]) -> Table:
        """From finite forecasts ``f`` and their scaled errors ``e`` (1-D, same length)."""
        if not len(e):
            # Nothing says how wide an interval should be: it collapses onto the point.
            zero = np.zeros(1)
            return cls(edges=np.zeros(0), quantiles=dict.fromkeys(levels, (zero, zero)))
        bins = max(1, min(BINS, len(e) // MIN_PER_BIN))
        edges = np.unique(np.quantile(f, np.linspace(0, 1, bins + 1)[1:-1]))
        which = np.searchsorted(edges, f, side="right")
        out: dict[float, tuple[Matrix, Matrix]] = {}
        for level in levels:
            lo = np.empty(len(edges) + 1)
            hi = np.empty(len(edges) + 1)
            for b in range(len(edges) + 1):
                # A bin below the lowest edge is empty when many forecasts tie there (a
                # lot of zeros): it takes the pooled errors.
                errors = e[which == b] if (which == b).any() else e
                # A planner reads the interval as "around the forecast": when past errors
                # were one-sided it still has to contain the point it is published with.
                lo[b] = min(float(np.quantile(errors, (1 - level) / 2)), 0.0)
                hi[b] = max(float(np.quantile(errors, (1 + level) / 2)), 0.0)
            out[level] = (lo, hi)
        return cls(edges=edges, quantiles=out)

    def bounds(self, point: Matrix, level: float) -> tuple[Matrix, Matrix]:
        """The bounds around ``point`` at quantile ``level``, clipped at 0."""
        which = np.searchsorted(self.edges, np.nan_to_num(point), side="right")
        width = _width(point)
        lo, hi = self.quantiles[level]
        return (
            _finite_clip(point + lo[which] * width, 0.0, point),
            _finite_clip(point + hi[which] * width, point, np.finfo(np.float64).max),
        )


def _scaled(past: Matrix, actual: Matrix) -> tuple[Matrix, Matrix, npt.NDArray[np.bool_]]:
    """The forecasts, their scaled errors and which of them are known (all flattened)."""
    f = np.asarray(past, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        e = (np.asarray(actual, dtype=np.float64).ravel() - f) / _width(f)
    return f, e, np.isfinite(e) & np.isfinite(f)


@dataclass(frozen=True)
class Conformal:
    """One :class:`Table` per group of series (``group_edges``: the mean daily sales
    between groups; none: one table for every series) and, per interval level, the level
    its quantiles are taken at (``levels``)."""

    tables: tuple[Table, ...]
    group_edges: Matrix
    levels: dict[float, float]

    @property
    def edges(self) -> Matrix:
        """The forecast levels between bins of the first group's table."""
        return self.tables[0].edges

    @classmethod
    def fit(
        cls,
        past: Matrix,
        actual: Matrix,
        levels: tuple[float, ...],
        *,
        sales: Matrix | None = None,
        method: str = "adaptive",
    ) -> Conformal:
        """From forecasts ``past`` made at rolling origins and the ``actual`` they were
        scored on (same shape, NaN where unknown): ``(series, origins, horizon)`` with the
        origins in time order, ``sales`` each series' mean daily sales. ``method="binned"``
        (or any other shape, or no ``sales``) pools every series at the stated levels."""
        if method not in METHODS:
            raise ValueError(f"interval method {method!r} is not one of {METHODS}")
        past = np.asarray(past, dtype=np.float64)
        actual = np.asarray(actual, dtype=np.float64)
        if method == "binned" or sales is None or past.ndim != 3:
            return cls._grouped(past, actual, levels, None, np.zeros(0))
        sales = np.nan_to_num(np.asarray(sales, dtype=np.float64))
        group_edges = _group_edges(past, actual, sales)
        used = {level: level for level in levels}
        blocks = np.array_split(np.arange(past.shape[1]), BLOCKS)
        if past.shape[1] >= BLOCKS:
            inside = dict.fromkeys(levels, 0.0)
            known = 0.0
            for b in range(1, BLOCKS):
                before = np.concatenate(blocks[:b])
                earlier = cls._grouped(
                    past[:, before], actual[:, before], levels, sales, group_edges
                )
                block = blocks[b]
                bounds = earlier.intervals(past[:, block], sales)
                scored = np.isfinite(actual[:, block]) & np.isfinite(past[:, block])
                known += float(scored.sum())
                for level, (lo, hi) in bounds.items():
                    a = actual[:, block]
                    inside[level] += float(np.sum(scored & (a >= lo) & (a <= hi)))
            if known:
                used = {
                    level: float(np.clip(2 * level - inside[level] / known, *adapted_range(level)))
                    for level in levels
                }
                # A wider stated level never takes a narrower interval: they stay nested.
                for low, high in zip(sorted(used), sorted(used)[1:], strict=False):
                    used[high] = max(used[high], used[low])
        return cls._grouped(past, actual, levels, sales, group_edges, used=used)

    @classmethod
    def _grouped(
        cls,
        past: Matrix,
        actual: Matrix,
        levels: tuple[float, ...],
        sales: Matrix | None,
        group_edges: Matrix,
        *,
        used: dict[float, float] | None = None,
    ) -> Conformal:
        used = used or {level: level for level in levels}
        f, e, known = _scaled(past, actual)
        quantile_levels = tuple(sorted(set(used.values())))
        if sales is None or not len(group_edges):
            table = Table.fit(f[known], e[known], quantile_levels)
            return cls(tables=(table,), group_edges=np.zeros(0), levels=used)
        group = np.broadcast_to(
            np.searchsorted(group_edges, sales, side="right").reshape(-1, 1, 1), past.shape
        ).ravel()
        tables = tuple(
            Table.fit(f[known & (group == g)], e[known & (group == g)], quantile_levels)
            for g in range(len(group_edges) + 1)
        )
        return cls(tables=tables, group_edges=group_edges, levels=used)

    def intervals(
        self, point: Matrix, sales: Matrix | None = None
    ) -> dict[float, tuple[Matrix, Matrix]]:
        """The bounds around ``point`` (series first) at each level, clipped at 0;
        ``sales``: each series' mean daily sales, which picks its group's table."""
        point = np.asarray(point, dtype=np.float64)
        out: dict[float, tuple[Matrix, Matrix]] = {}
        for level, used in self.levels.items():
            lo, hi = self.tables[0].bounds(point, used)
            if len(self.tables) > 1 and sales is not None and point.size:
                group = np.searchsorted(
                    self.group_edges,
                    np.nan_to_num(np.asarray(sales, dtype=np.float64)),
                    side="right",
                ).reshape(-1, *([1] * (point.ndim - 1)))
                for g, table in enumerate(self.tables[1:], start=1):
                    g_lo, g_hi = table.bounds(point, used)
                    lo, hi = np.where(group == g, g_lo, lo), np.where(group == g, g_hi, hi)
            out[level] = (lo, hi)
        return out


def _group_edges(past: Matrix, actual: Matrix, sales: Matrix) -> Matrix:
    """The mean daily sales between groups of calibration series (terciles of theirs), none
    when a group would have fewer than ``MIN_PER_GROUP`` known errors."""
    if not len(sales):
        return np.zeros(0)
    edges = np.unique(np.quantile(sales, np.linspace(0, 1, GROUPS + 1)[1:-1]))
    group = np.searchsorted(edges, sales, side="right")
    known = np.isfinite(actual - past).sum(axis=tuple(range(1, past.ndim)))
    counts = np.bincount(group, weights=known, minlength=len(edges) + 1)
    return edges if len(edges) and counts.min() >= MIN_PER_GROUP else np.zeros(0)


def _finite_clip(values: Matrix, low: Matrix | float, high: Matrix | float) -> Matrix:
    """``values`` clipped to ``[low, high]`` with overflow (inf) read as the bound."""
    clipped = np.clip(np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=0.0), low, high)
    return np.asarray(clipped, dtype=np.float64)
