"""Conformal intervals conditioned on the forecast level.

Pooled over every series, one quantile of the errors is too wide for slow sellers and too
narrow for fast ones while covering the right share on average: the spread of count demand
depends on its level in a way one ``sqrt(level)`` scaling does not fully remove. So the
calibration forecasts are cut into bins by their level (quantiles of the calibration
forecasts, so each bin has enough errors), and each bin has its own empirical quantiles of
the scaled errors ``(actual - forecast) / sqrt(forecast + 0.5)``. A forecast takes the
quantiles of the bin its level falls in: calibrated for the kind of product it is, not
only on average.
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


def _width(forecast: Matrix) -> Matrix:
    return np.asarray(np.sqrt(np.maximum(forecast, 0.0) + POISSON_OFFSET), dtype=np.float64)


@dataclass(frozen=True)
class Conformal:
    """Per interval level, the scaled-error quantiles below and above the point, per bin
    of forecast level (``edges``: the levels between bins)."""

    edges: Matrix
    quantiles: dict[float, tuple[Matrix, Matrix]]

    @classmethod
    def fit(cls, past: Matrix, actual: Matrix, levels: tuple[float, ...]) -> Conformal:
        """From forecasts ``past`` made at rolling origins and the ``actual`` they were
        scored on (same shape, NaN where unknown)."""
        f = np.asarray(past, dtype=np.float64).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            e = (np.asarray(actual, dtype=np.float64).ravel() - f) / _width(f)
        known = np.isfinite(e) & np.isfinite(f)
        f, e = f[known], e[known]
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

    def intervals(self, point: Matrix) -> dict[float, tuple[Matrix, Matrix]]:
        """The bounds around ``point`` at each level, clipped at 0."""
        which = np.searchsorted(self.edges, np.nan_to_num(point), side="right")
        width = _width(point)
        return {
            level: (
                _finite_clip(point + lo[which] * width, 0.0, point),
                _finite_clip(point + hi[which] * width, point, np.finfo(np.float64).max),
            )
            for level, (lo, hi) in self.quantiles.items()
        }


def _finite_clip(values: Matrix, low: Matrix | float, high: Matrix | float) -> Matrix:
    """``values`` clipped to ``[low, high]`` with overflow (inf) read as the bound."""
    clipped = np.clip(np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=0.0), low, high)
    return np.asarray(clipped, dtype=np.float64)
