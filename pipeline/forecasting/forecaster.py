"""The batch forecaster: candidate models, holdout-validated blend, conformal intervals.

1. Every candidate (SES at several smoothing constants, TSB for intermittent demand, moving
   averages) runs on the weekday-deseasonalised history in one causal pass (see models).
2. Each series blends the candidates with weights ``1 / MSE**2``, the MSE measured on
   rolling-origin holdouts (weekly origins, each forecasting the full horizon) over the last
   ``validation_weeks`` weeks, so the rule is validated out of sample rather than in-fit.
3. With enough history, a global LightGBM model (:mod:`.global_model`) learns from every
   series at once what the calendar, prices and the SKU's and store's recent trends add to
   that blend; each series weighs the two by their errors on held-out weekly origins.
4. Intervals are conformal (:mod:`.conformal`): the published model's errors at rolling
   origins, divided by ``sqrt(forecast + 0.5)`` (count noise), give empirical quantiles per
   group of series by mean sales and bin of forecast level, so slow and fast sellers are
   each covered as stated, at a level adapted to how tables fitted on earlier origins
   covered later ones: what this very model's past errors covered, out of sample.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pipeline.forecasting import global_model
from pipeline.forecasting.calendar import CalendarSpec, calendar_features
from pipeline.forecasting.conformal import Conformal
from pipeline.forecasting.global_model import GlobalModelConfig
from pipeline.forecasting.models import (
    WEEK,
    SeasonalIndex,
    deseasonalise,
    moving_average_paths,
    seasonal_naive,
    ses_paths,
    tsb_paths,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from pipeline.forecasting.calendar import CalendarFeatures

Matrix = npt.NDArray[np.float64]

SES_ALPHAS = (0.01, 0.02, 0.035, 0.05, 0.1, 0.2)
TSB_PAIRS = ((0.05, 0.05), (0.1, 0.05), (0.1, 0.1), (0.2, 0.1))
MA_WINDOWS = (28, 56, 91)
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
    #: Three years: the global model needs a year before its first training origin for
    #: the year-ago features, and two years of origins to see each holiday twice.
    fit_days: int = 1092
    seasonal: SeasonalIndex = field(default_factory=lambda: SeasonalIndex(weeks=52, shrink=500))
    validation_weeks: int = 8
    calibration_origins: int = 182
    levels: tuple[float, ...] = (0.8, 0.95)
    #: How the intervals are calibrated (:mod:`.conformal`): ``"adaptive"`` (per group of
    #: series by mean sales, at a level adapted on the calibration origins in time order)
    #: or ``"binned"`` (the previous calibration: per bin of forecast level alone).
    interval_method: str = "adaptive"
    #: Series forecast at once: peak memory follows this, not the number of series.
    chunk_series: int = 2048
    #: Series whose errors calibrate the intervals (all of them up to this many).
    calibration_series: int = 4096
    #: The global model, or None for the vectorised blend alone.
    global_model: GlobalModelConfig | None = field(default_factory=GlobalModelConfig)


@dataclass(frozen=True)
class Covariates:
    """What is known about the series besides their history; every field optional.

    ``start`` dates the history's first column. ``locations`` (one per series) with a
    ``calendar`` give holidays, declared events and closures; ``groups`` (per grouping such
    as ``sku``, each series' integer group) give group trends; ``relative_price`` is the
    price against the series' regular price, ``(series, history days + horizon)``.
    """

    start: pd.Timestamp
    locations: Sequence[str] | None = None
    calendar: CalendarSpec | None = None
    groups: Mapping[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    relative_price: Matrix | None = None


@dataclass(frozen=True)
class Forecast:
    """Forecasts for ``series x horizon``: point, intervals per level, the chosen model."""

    point: Matrix
    intervals: dict[float, tuple[Matrix, Matrix]]
    model: list[str]
    weights: Matrix
    #: How it was made (a run reports these): the chunks of series fitted, the series
    #: whose errors calibrated the intervals, and whether the global model was weighed in.
    chunks: int = 0
    calibrated_series: int = 0
    global_model: bool = False

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


def forecast(
    history: Matrix, config: ForecasterConfig | None = None, covariates: Covariates | None = None
) -> Forecast:
    """Forecast the next ``config.horizon`` days of every row of ``history``.

    ``history`` is ``(series, days)``, NaN where demand is unknown (before launch, or a
    censored stockout day); the last column is the last observed day.
    """
    # All-NaN slices (series not launched yet in a window) are expected and handled.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _forecast(history, config or ForecasterConfig(), covariates)


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


@dataclass(frozen=True)
class Context:
    """The covariates cut to the fitted window, and the global model's plan (``None``:
    the vectorised blend alone): what every chunk of series is forecast with.

    Built once for every series (:meth:`of`) and cut to one chunk (:meth:`chunk`): the
    calendar is per location, so only the per-series rows, prices and group codes are cut,
    and group sizes stay those of every series so that chunks' group totals add up."""

    start: pd.Timestamp | None
    calendar: CalendarFeatures | None
    calendar_rows: npt.NDArray[np.int64] | None
    relative_price: Matrix | None
    groups: Mapping[str, npt.NDArray[np.int64]]
    plan: global_model.Plan | None
    group_sizes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        shape: tuple[int, int],
        dropped: int,
        config: ForecasterConfig,
        covariates: Covariates | None,
    ) -> Context:
        """The context of a prepared history of ``shape`` (series, days), ``dropped`` days
        after the first of ``covariates.start`` (see :func:`prepare`)."""
        import pandas as pd

        n, days = shape
        plan = (
            global_model.Plan.of(days, config.horizon, config.global_model)
            if config.global_model is not None and covariates is not None and n
            else None
        )
        if covariates is None:
            return cls(None, None, None, None, {}, None)
        start = pd.Timestamp(covariates.start) + pd.Timedelta(days=dropped)
        calendar = rows = None
        if covariates.calendar is not None and covariates.locations is not None:
            calendar = calendar_features(
                covariates.calendar, covariates.locations, start, days + config.horizon
            )
            rows = calendar.rows(covariates.locations)
        price = covariates.relative_price
        return cls(
            start=start,
            calendar=calendar,
            calendar_rows=rows,
            relative_price=None if price is None else price[:, dropped:],
            groups=covariates.groups,
            plan=plan,
            group_sizes={
                g: int(codes.max()) + 1 if len(codes) else 0
                for g, codes in covariates.groups.items()
            },
        )

    def chunk(self, series: slice) -> Context:
        """The context of the series at ``series`` (of every series this one covers)."""
        return replace(
            self,
            calendar_rows=None if self.calendar_rows is None else self.calendar_rows[series],
            relative_price=None if self.relative_price is None else self.relative_price[series],
            groups={g: codes[series] for g, codes in self.groups.items()},
        )

    def censor(self, y: Matrix) -> Matrix:
        """``y`` (this context's series) with closure days unknown: a closure day's sales
        are no demand."""
        if self.calendar is None or self.calendar_rows is None:
            return y
        return np.where(self.calendar.closed[self.calendar_rows, : y.shape[1]], np.nan, y)

    def group_totals(self, y: Matrix) -> dict[str, Matrix]:
        """The daily units of each group over this context's series (sized for every
        series' groups, so that the totals of disjoint chunks add up)."""
        return global_model.group_totals(y, self.groups, self.group_sizes)

    def inputs(
        self, y: Matrix, fit: ChunkFit, trends: global_model.GroupTrends
    ) -> global_model.Inputs:
        """The global model's inputs for this context's series, history ``y``, fitted as
        ``fit``."""
        assert self.start is not None  # noqa: S101 - a plan needs covariates
        return global_model.Inputs(
            y=y,
            baseline_level=fit.level,
            index=fit.index,
            trailing=global_model.Trailing.of(y),
            start=self.start,
            calendar=self.calendar,
            calendar_rows=self.calendar_rows,
            relative_price=self.relative_price,
            groups=self.groups,
            trends=trends,
        )

    def closed(self, days: int, horizon: int) -> npt.NDArray[np.bool_] | None:
        """Planned closures over the horizon ``(series, horizon)``."""
        if self.calendar is None or self.calendar_rows is None:
            return None
        return self.calendar.closed[self.calendar_rows, days : days + horizon]


def training_share(series: int, plan: global_model.Plan, config: GlobalModelConfig) -> float:
    """The share of every series x training origin x step the global model trains on (at
    most ``max_rows`` rows); each chunk samples this share of its own rows."""
    return min(1.0, config.max_rows / (series * len(plan.train) * plan.horizon))


def chunks_of(series: int, config: ForecasterConfig) -> list[slice]:
    """The consecutive chunks of ``chunk_series`` series, in order."""
    return [
        slice(s, min(s + config.chunk_series, series))
        for s in range(0, series, config.chunk_series)
    ]


def _forecast(history: Matrix, config: ForecasterConfig, covariates: Covariates | None) -> Forecast:
    y = prepare(history, config)
    n, days = y.shape
    context = Context.of(y.shape, history.shape[1] - days, config, covariates)
    y = context.censor(y)
    chunks = chunks_of(n, config)
    # The only quantities shared across series are the pooled weekday index, the group
    # totals, the global model and the conformal table; everything else is per series, so
    # memory follows the chunk (the global model's second pass refits a chunk rather than
    # keeping every chunk's fit).
    pooled = (
        pooled_sum([config.seasonal.pooled_parts(y[c]) for c in chunks])
        if len(chunks) > 1
        else None
    )

    def fit(c: slice) -> ChunkFit:
        return fit_chunk(
            y[c], pooled, config, sample=calibration_sample(np.arange(c.start, c.stop), n, config)
        )

    def blend_alone() -> Forecast:
        fits = [closing(fit(c), context.chunk(c).closed(days, config.horizon)) for c in chunks]
        calibration = [f.calibration for f in fits]
        conformal = calibrate(calibration, config)
        return replace(
            combine([f.forecast(conformal) for f in fits], config),
            chunks=len(chunks),
            calibrated_series=calibrated_series(calibration),
        )

    plan, model_config = context.plan, config.global_model
    if plan is None or model_config is None:
        return blend_alone()

    # Summed chunk by chunk, as the Spark engine sums its executors' totals.
    trends = global_model.group_trends(
        global_model.add_totals([context.chunk(c).group_totals(y[c]) for c in chunks])
    )
    kept: dict[int, tuple[ChunkFit, global_model.Inputs]] = {}
    share = training_share(n, plan, model_config)
    training = []
    names: list[str] = []
    for i, c in enumerate(chunks):
        fitted = fit(c)
        inputs = context.chunk(c).inputs(y[c], fitted, trends)
        names = names or global_model.feature_names(inputs)
        training.append(
            global_model.training_rows(inputs, plan, model_config, share=share, seed=c.start)
        )
        if len(chunks) == 1:
            kept[i] = fitted, inputs
    model = global_model.train(training, names, model_config)
    del training
    if model is None:  # nothing known to learn from
        return blend_alone()
    parts = []
    for i, c in enumerate(chunks):
        if i in kept:
            fitted, inputs = kept.pop(i)
        else:
            fitted = fit(c)
            inputs = context.chunk(c).inputs(y[c], fitted, trends)
        parts.append(
            blend(
                fitted,
                inputs,
                model,
                plan,
                sample=calibration_sample(np.arange(c.start, c.stop), n, config),
                closed=context.chunk(c).closed(days, config.horizon),
            )
        )
    calibration = [p.calibration for p in parts]
    conformal = calibrate(calibration, config)
    return replace(
        combine([p.forecast(conformal) for p in parts], config),
        chunks=len(chunks),
        calibrated_series=calibrated_series(calibration),
        global_model=True,
    )


#: What a published chunk keeps of its paths: nothing. They are ``series x days`` (the
#: weekday index 7 times that), and every chunk's would otherwise wait for the intervals.
_NO_PATHS = np.zeros((0, 0))


def closing(fitted: ChunkFit, closed: npt.NDArray[np.bool_] | None) -> ChunkFit:
    """``fitted`` ready to publish: forecasting 0 on its planned closure days (``closed``:
    series x horizon), its paths dropped."""
    point = fitted.point if closed is None else np.where(closed, 0.0, fitted.point)
    return dataclasses.replace(fitted, point=point, closed=closed, level=_NO_PATHS, index=_NO_PATHS)


def blend(
    fitted: ChunkFit,
    inputs: global_model.Inputs,
    model: Any,
    plan: global_model.Plan,
    *,
    sample: npt.NDArray[np.bool_],
    closed: npt.NDArray[np.bool_] | None,
) -> ChunkFit:
    """The chunk's forecasts with the global model weighed in per series by the two
    models' squared errors on the held-out origins (weights ``1 / MSE``); its calibration
    is the blend's forecasts at those origins for the ``sample``d series, and ``closed``
    days (series, horizon) are forecast 0."""
    horizon = plan.horizon
    y = inputs.y
    held = global_model.predict(model, inputs, plan.holdout, horizon)
    final = global_model.predict(model, inputs, np.array([plan.final]), horizon)[:, 0]
    base = _from_origins(fitted.level, fitted.index, plan.holdout, horizon)
    actual = _actuals(y, plan.holdout, horizon)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse_global = np.nanmean((held - actual) ** 2, axis=(1, 2))
        mse_base = np.nanmean((base - actual) ** 2, axis=(1, 2))
        inverse = 1.0 / np.maximum(mse_global, 1e-9), 1.0 / np.maximum(mse_base, 1e-9)
        weight = inverse[0] / (inverse[0] + inverse[1])
    # A series without held-out actuals (launched since) weighs both alike.
    weight = np.where(np.isfinite(weight), weight, 0.5)[:, None]
    point = weight * final + (1 - weight) * fitted.point
    past = weight[:, :, None] * held + (1 - weight[:, :, None]) * base
    if closed is not None:
        point = np.where(closed, 0.0, point)
    sales = mean_sales(y) if fitted.sales is None else fitted.sales
    return ChunkFit(
        point=np.maximum(point, 0.0),
        weights=fitted.weights,
        calibration=(past[sample], actual[sample], sales[sample]),
        level=_NO_PATHS,
        index=_NO_PATHS,
        closed=closed,
        sales=sales,
    )


def calibrate(parts: list[tuple[Matrix, Matrix, Matrix]], config: ForecasterConfig) -> Conformal:
    """The conformal table of every chunk's calibration forecasts, actuals and series'
    mean daily sales."""
    if not parts:
        empty = np.zeros((0, 0, config.horizon))
        return Conformal.fit(empty, empty, config.levels, method=config.interval_method)
    return Conformal.fit(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        config.levels,
        sales=np.concatenate([p[2] for p in parts]),
        method=config.interval_method,
    )


def mean_sales(y: Matrix) -> Matrix:
    """Each series' mean known daily sales (0 when none is known): its group in the
    intervals' calibration."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanmean(y, axis=1)) if y.shape[1] else np.zeros(y.shape[0])


def calibrated_series(parts: list[tuple[Matrix, Matrix, Matrix]]) -> int:
    """How many series' errors are in every chunk's calibration forecasts (``parts``)."""
    return sum(p[0].shape[0] for p in parts)


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
    #: Forecasts at rolling origins (in time order) and their actuals, (sampled series,
    #: origins, horizon), and the sampled series' mean daily sales.
    calibration: tuple[Matrix, Matrix, Matrix]
    level: Matrix  # (series, days): the blend's deseasonalised level after each day
    index: Matrix  # (series, 7, days): the weekday index known after each day
    closed: npt.NDArray[np.bool_] | None = None  # planned closures (series, horizon)
    sales: Matrix | None = None  # (series,): mean daily sales, the series' interval group

    def forecast(self, conformal: Conformal) -> Forecast:
        chosen = np.argmax(self.weights, axis=0)
        bounds = conformal.intervals(self.point, self.sales)
        if self.closed is not None:
            bounds = {
                level: (np.where(self.closed, 0.0, lo), np.where(self.closed, 0.0, hi))
                for level, (lo, hi) in bounds.items()
            }
        return Forecast(
            point=self.point,
            intervals=bounds,
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
    # In time order: the adaptive calibration scores earlier origins' table on later ones.
    origins = days - 1 - horizon - np.arange(config.calibration_origins)[::-1]
    origins = origins[origins >= 0]
    sales = mean_sales(y)
    calibration = (
        _from_origins(blended[sample], index[sample], origins, horizon),
        _actuals(y[sample], origins, horizon),
        sales[sample],
    )
    return ChunkFit(
        point=point,
        weights=weights,
        calibration=calibration,
        level=blended,
        index=index,
        sales=sales,
    )


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
