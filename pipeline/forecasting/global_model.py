"""One LightGBM model over every series: what history alone cannot know, learned across SKUs.

The vectorised models (:mod:`.forecaster`) see one series at a time and no calendar. This
model learns, from every series at once, how a holiday, a declared event, a price cut or a
weekday moves sales relative to the series' own recent level. It is *direct* and *global*:
features are taken at the forecast origin ``t`` (trailing levels, the vectorised blend's
forecast, intermittency), plus what is known about the target day ``t + h`` (its weekday,
holiday, events, relative price) and the step ``h`` itself, so one model covers every
horizon and every series with no per-series loop.

The price is a correction on top (:class:`Model`): at the regular price the model is exactly
the one without prices.

Targets and level features are divided by the series' scale (the root mean squared one-step
change, M5's RMSSE scale), so one squared-error objective weighs every series as the RMSSE
does, and fast and slow sellers share one model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pipeline.forecasting.evaluate import rmsse_scale
from pipeline.forecasting.models import WEEK

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from pipeline.forecasting.calendar import CalendarFeatures

Matrix = npt.NDArray[np.float64]
Index = npt.NDArray[np.int64]

#: Trailing windows (days) of the level features.
WINDOWS = (7, 28, 91, 364)
#: Days-since-last-sale is capped here: beyond it a series is simply dormant.
DORMANT_DAYS = 364
#: The scale of a series that never changed (all zeros): keeps its targets finite.
MIN_SCALE = 0.1
#: The column of the vectorised blend's forecast (see :func:`feature_names`).
BASELINE = 4


@dataclass(frozen=True)
class GlobalModelConfig:
    """Training of the global model (defaults measured on rolling origins, see README)."""

    #: Weekly origins the model trains on, ending before the held-out ones.
    train_weeks: int = 52
    #: The most recent weekly origins, held out: they weigh the model against the
    #: vectorised blend per series and calibrate the intervals.
    holdout_weeks: int = 8
    #: Rows the model trains on, sampled evenly over series x origins: memory and time stay
    #: flat however many series there are.
    max_rows: int = 600_000
    #: Fewer training origins than this: the vectorised blend alone (too little history).
    min_train_weeks: int = 8
    rounds: int = 250
    #: Rounds of the price booster (fitted to the first one's residuals, see :class:`Model`).
    price_rounds: int = 100
    #: Rows the price booster trains on: every row whose price departs, then a sample.
    price_rows: int = 100_000
    threads: int = 2
    params: dict[str, Any] = field(
        default_factory=lambda: {
            "objective": "regression",
            "learning_rate": 0.05,
            "num_leaves": 63,
            "min_data_in_leaf": 200,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.7,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "max_bin": 127,
            "verbose": -1,
            "seed": 7,
            "deterministic": True,
            "force_row_wise": True,
        }
    )


def _trailing(cumulative: Matrix, window: int) -> Matrix:
    """Trailing sums over ``window`` columns from a cumulative sum along the last axis."""
    out = cumulative.copy()
    out[..., window:] -= cumulative[..., :-window]
    return out


#: Per grouping, the group's trailing mean daily units over 7, 28 and 364 days
#: ``(groups, days)``: sums over disjoint chunks of series add up.
GroupTrends = dict[str, tuple[Matrix, Matrix, Matrix]]


def group_totals(
    y: Matrix, groups: Mapping[str, Index], sizes: Mapping[str, int] | None = None
) -> dict[str, Matrix]:
    """Per grouping, the daily units of each group ``(groups, days)``; ``sizes`` (per
    grouping, the number of groups) sizes the tables when ``y`` is one chunk of the series,
    whose highest code need not be the highest of all."""
    values = np.nan_to_num(y)
    totals = {}
    for name, codes in groups.items():
        size = sizes[name] if sizes is not None else int(codes.max()) + 1 if len(codes) else 0
        total = np.zeros((size, y.shape[1]))
        np.add.at(total, codes, values)
        totals[name] = total
    return totals


def add_totals(parts: Sequence[Mapping[str, Matrix]]) -> dict[str, Matrix]:
    """The group totals of disjoint chunks of series added up, in order."""
    out: dict[str, Matrix] = {}
    for part in parts:
        for name, total in part.items():
            out[name] = out[name] + total if name in out else total.copy()
    return out


def group_trends(totals: Mapping[str, Matrix]) -> GroupTrends:
    out: GroupTrends = {}
    for name, total in totals.items():
        cum = np.cumsum(total, axis=1)
        m7, m28, m364 = (_trailing(cum, w) / w for w in (7, 28, 364))
        out[name] = (m7, m28, m364)
    return out


@dataclass(frozen=True)
class Trailing:
    """Per series and day, causal summaries of the history up to and including the day."""

    means: list[Matrix]
    zero_28: Matrix
    zero_91: Matrix
    since_sale: Matrix
    scale: Matrix  # (series,)

    @classmethod
    def of(cls, y: Matrix) -> Trailing:
        known = ~np.isnan(y)
        values = np.where(known, y, 0.0)
        cum_v = np.cumsum(values, axis=1)
        cum_k = np.cumsum(known, axis=1, dtype=np.float64)
        cum_z = np.cumsum(known & (values == 0), axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = [_trailing(cum_v, w) / _trailing(cum_k, w) for w in WINDOWS]
            zero_28 = _trailing(cum_z, 28) / _trailing(cum_k, 28)
            zero_91 = _trailing(cum_z, 91) / _trailing(cum_k, 91)
        days = np.arange(y.shape[1], dtype=np.float64)
        last_sale = np.maximum.accumulate(np.where(values > 0, days, -np.inf), axis=1)
        # The RMSSE's own scale, so the squared-error objective weighs series as it does.
        mse = rmsse_scale(y)
        scale = np.sqrt(np.where(np.isfinite(mse), mse, 0.0))
        return cls(
            means=means,
            zero_28=zero_28,
            zero_91=zero_91,
            since_sale=np.minimum(days - last_sale, DORMANT_DAYS),
            scale=np.maximum(scale, MIN_SCALE),
        )


@dataclass(frozen=True)
class Inputs:
    """Everything the features of one chunk of series are gathered from. Days run from
    ``start`` over the history; the known-in-advance covariates (calendar, price) extend
    past it by the horizon."""

    y: Matrix  # (series, days) history, NaN unknown
    baseline_level: Matrix  # (series, days) the vectorised blend's deseasonalised level
    index: Matrix  # (series, 7, days) its weekday index
    trailing: Trailing
    start: pd.Timestamp
    calendar: CalendarFeatures | None = None
    calendar_rows: Index | None = None  # per series, its row of the calendar
    relative_price: Matrix | None = None  # (series, days + horizon)
    #: Per grouping (e.g. SKU, location), each series' group and the groups' trends: the
    #: model sees the group's recent and year-ago movement, which one slow series' history
    #: is too noisy to show.
    groups: Mapping[str, Index] = field(default_factory=dict)
    trends: GroupTrends = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """The origins (day positions) the model trains on, is checked on, and forecasts from."""

    train: Index
    holdout: Index
    final: int
    horizon: int

    @classmethod
    def of(cls, days: int, horizon: int, config: GlobalModelConfig) -> Plan | None:
        """Weekly origins ending on the last day (so every origin shares its weekday); the
        training targets end before the first held-out origin. ``None``: too short."""
        final = days - 1
        holdout = final - horizon - WEEK * np.arange(config.holdout_weeks)[::-1]
        last_train = int(holdout[0]) - horizon
        train = last_train - WEEK * np.arange(config.train_weeks)[::-1]
        train = train[train >= WINDOWS[2]]
        if holdout[0] < 0 or len(train) < config.min_train_weeks:
            return None
        return cls(train=train, holdout=holdout, final=final, horizon=horizon)


def feature_names(inputs: Inputs) -> list[str]:
    names = [
        "step",
        "weekday",
        "day_of_month",
        "week_of_year",
        "baseline",
        "weekday_index",
        *(f"mean_{w}" for w in WINDOWS),
        "last_day",
        "last_same_weekday",
        "zero_share_28",
        "zero_share_91",
        "days_since_sale",
        "log_level",
    ]
    if inputs.calendar is not None:
        names += ["holiday", "days_to_holiday", "days_from_holiday"]
        names += [f"event_{n}" for n in inputs.calendar.event_names]
        names += [f"event_{n}_last_week" for n in inputs.calendar.event_names]
    if inputs.relative_price is not None:
        names += ["relative_price", "relative_price_last_week", "relative_price_origin"]
    for g in inputs.groups:
        names += [f"{g}_trend_7_28", f"{g}_trend_28_364", f"{g}_last_year"]
    return names


@dataclass(frozen=True)
class Rows:
    """Which forecasts: series ``series[r]`` from origin day ``origin[r]``, ``step[r]`` days
    ahead (1-D arrays of one length)."""

    series: Index
    origin: Index
    step: Index

    @classmethod
    def grid(cls, series: int, origins: Index, horizon: int) -> Rows:
        """Every series x origin x step, ordered series, origin, step."""
        s, o, h = np.meshgrid(np.arange(series), origins, np.arange(1, horizon + 1), indexing="ij")
        return cls(series=s.ravel(), origin=o.ravel(), step=h.ravel())

    def sample(self, size: int, seed: int) -> Rows:
        """At most ``size`` of the rows, drawn evenly (and in order) by a fixed seed."""
        if len(self.series) <= size:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.series), size, replace=False))
        return Rows(series=self.series[keep], origin=self.origin[keep], step=self.step[keep])

    @property
    def target(self) -> Index:
        return self.origin + self.step


def features(inputs: Inputs, rows: Rows) -> npt.NDArray[np.float32]:
    """The feature matrix ``(rows, features)``, columns as :func:`feature_names`."""
    s, t, target = rows.series, rows.origin, rows.target
    trailing = inputs.trailing
    # The same weekday in the last week before the origin: the most recent like day.
    lag_day = target - WEEK * -(-rows.step // WEEK)
    scale = trailing.scale[s]
    index_at = inputs.index[s, target % WEEK, t]
    baseline = inputs.baseline_level[s, t] * index_at
    dates = _dates(inputs, int(target.max()) + 1)
    columns: list[npt.NDArray[Any]] = [
        rows.step,
        (inputs.start.weekday() + target) % WEEK,
        dates.day[target],
        dates.week[target],
        baseline / scale,
        index_at,
        *(m[s, t] / scale for m in trailing.means),
        inputs.y[s, t] / scale,
        inputs.y[s, lag_day] / scale,
        trailing.zero_28[s, t],
        trailing.zero_91[s, t],
        trailing.since_sale[s, t],
        np.log1p(np.nan_to_num(trailing.means[1][s, t])),
    ]
    calendar, calendar_rows = inputs.calendar, inputs.calendar_rows
    if calendar is not None and calendar_rows is not None:
        r = calendar_rows[s]
        columns += [calendar.holiday[r, target], calendar.to_holiday[r, target]]
        columns += [calendar.from_holiday[r, target]]
        columns += [calendar.events[k][r, target] for k in range(len(calendar.event_names))]
        columns += [calendar.events[k][r, lag_day] for k in range(len(calendar.event_names))]
    if inputs.relative_price is not None:
        price = inputs.relative_price
        columns += [price[s, target], price[s, lag_day], price[s, t]]
    for g, codes in inputs.groups.items():
        m7, m28, m364 = inputs.trends[g]
        c = codes[s]
        year_ago = target - 364 + 3  # the week around the target day, a year earlier
        with np.errstate(invalid="ignore", divide="ignore"):
            columns += [m7[c, t] / m28[c, t], m28[c, t] / m364[c, t]]
            columns += [
                np.where(
                    t >= 364,
                    m7[c, np.maximum(year_ago, 0)] / m28[c, np.maximum(t - 364, 0)],
                    np.nan,
                )
            ]
    return np.stack([np.asarray(c, dtype=np.float32) for c in columns], axis=1)


@dataclass(frozen=True)
class _Dates:
    day: npt.NDArray[np.int64]
    week: npt.NDArray[np.int64]


def _dates(inputs: Inputs, days: int) -> _Dates:
    """Day of month and ISO week of every day position from ``inputs.start``."""
    import pandas as pd

    span = pd.date_range(inputs.start, periods=days)
    return _Dates(
        day=np.asarray(span.day, dtype=np.int64),
        week=np.asarray(span.isocalendar().week, dtype=np.int64),
    )


def targets(inputs: Inputs, rows: Rows) -> Matrix:
    """The scaled actuals of ``rows`` (NaN: unknown, after the history or a closure)."""
    days = inputs.y.shape[1]
    target = rows.target
    y = np.where(target < days, inputs.y[rows.series, np.minimum(target, days - 1)], np.nan)
    if inputs.calendar is not None and inputs.calendar_rows is not None:
        closed = inputs.calendar.closed[inputs.calendar_rows[rows.series], target]
        y = np.where(closed, np.nan, y)
    return np.asarray(y / inputs.trailing.scale[rows.series], dtype=np.float64)


def training_rows(
    inputs: Inputs, plan: Plan, config: GlobalModelConfig, *, share: float, seed: int
) -> tuple[npt.NDArray[np.float32], Matrix]:
    """Features and targets of ``share`` of this chunk's training rows (sampled with
    ``seed``): the target is the scaled error of the vectorised blend, so trees learn
    corrections to it, not the identity of the level."""
    grid = Rows.grid(inputs.y.shape[0], plan.train, plan.horizon)
    rows = grid.sample(max(1, round(share * len(grid.series))), seed)
    x = features(inputs, rows)
    y = targets(inputs, rows) - x[:, BASELINE]
    known = np.isfinite(y)
    return x[known], y[known]


#: The relative price features (see :func:`feature_names`): 1 at the regular price.
PRICE_FEATURES = ("relative_price", "relative_price_last_week", "relative_price_origin")


@dataclass(frozen=True)
class Model:
    """The trained global model: a booster over every feature but the prices and, where
    prices were given, a second booster over every feature fitted to the first one's
    residuals, added as its prediction at the day's prices minus its prediction at the
    regular price. A row whose prices are all regular (or unknown) gets exactly the first
    booster's forecast, the one without prices: on M5's steady shelf prices, price features
    in one booster moved every series a little by reshaping every tree (0.9889x AutoETS
    against 0.9884x without prices at the standard cutoff), while the correction moves only
    the series whose price departs (benchmarks/results/forecaster-m5-price-variants.md)."""

    base: Any
    price: Any = None
    #: The price features' columns in the full feature matrix.
    price_columns: tuple[int, ...] = ()

    def predict(self, x: npt.NDArray[np.float32]) -> Matrix:
        """The scaled correction to the blend of each row of ``x`` (every feature)."""
        # Predicting takes the threads it was trained with (LightGBM would take them all).
        threads = self.base.params.get("num_threads", 0)
        columns = list(self.price_columns)
        plain = np.delete(x, columns, axis=1) if columns else x
        out = self.base.predict(plain, num_threads=threads)
        departs = departing(x, self.price_columns) if self.price is not None else None
        if departs is not None and departs.any():
            # Only where a price departs: elsewhere the correction is 0 by construction.
            moved = x[departs]
            regular = moved.copy()
            regular[:, columns] = np.where(np.isnan(moved[:, columns]), np.nan, 1.0)
            correction = self.price.predict(moved, num_threads=threads)
            out = out.copy()
            out[departs] += correction - self.price.predict(regular, num_threads=threads)
        return np.asarray(out, dtype=np.float64)

    def to_text(self) -> str:
        """The boosters as text, which rebuilds them exactly (:meth:`from_text`): how the
        model crosses to Spark's executors."""
        import json

        price = None if self.price is None else self.price.model_to_string()
        base = self.base.model_to_string()
        return json.dumps({"base": base, "price": price, "price_columns": self.price_columns})

    @classmethod
    def from_text(cls, text: str) -> Model:
        import json

        import lightgbm

        doc = json.loads(text)
        price = None if doc["price"] is None else lightgbm.Booster(model_str=doc["price"])
        base = lightgbm.Booster(model_str=doc["base"])
        return cls(base=base, price=price, price_columns=tuple(doc["price_columns"]))


def train(
    parts: Sequence[tuple[npt.NDArray[np.float32], Matrix]],
    names: list[str],
    config: GlobalModelConfig,
) -> Model | None:
    """The global model over every chunk's training rows (see :class:`Model`); ``None``
    when there is at most one (no series has a known day at any training target, or one
    has one: all censored or launched since), as LightGBM refuses an empty dataset and,
    bagging, a single row (``Check failed: (num_data) > (0)``): the vectorised blend alone
    then."""
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if len(y) < 2:  # noqa: PLR2004 - a bag of 70 % of one row is empty
        return None
    columns = tuple(i for i, n in enumerate(names) if n in PRICE_FEATURES)
    plain = [n for n in names if n not in PRICE_FEATURES]
    base = _booster(np.delete(x, list(columns), axis=1), y, plain, config, config.rounds)
    if not columns:
        return Model(base=base)
    # The price booster learns from every row whose price departs and an even sample of
    # the rest (its correction is differenced against the regular price, so those rows
    # teach it what a regular price looks like): a third of the base's rows at most.
    departs = departing(x, columns)
    rest = np.flatnonzero(~departs)
    room = max(0, config.price_rows - int(departs.sum()))
    if len(rest) > room:
        rng = np.random.default_rng(config.params["seed"])
        rest = np.sort(rng.choice(rest, room, replace=False))
    keep = np.sort(np.concatenate([np.flatnonzero(departs), rest]))
    x, y = x[keep], y[keep]
    if len(y) < 2:  # noqa: PLR2004 - as above
        return Model(base=base)
    residual = y - base.predict(np.delete(x, list(columns), axis=1), num_threads=config.threads)
    price = _booster(x, residual, names, config, config.price_rounds)
    return Model(base=base, price=price, price_columns=columns)


def departing(x: npt.NDArray[np.float32], columns: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """The rows of ``x`` with a known price feature away from the regular price (1)."""
    prices = x[:, list(columns)]
    return np.asarray((np.isfinite(prices) & (prices != 1.0)).any(axis=1))


def _booster(
    x: npt.NDArray[np.float32], y: Matrix, names: list[str], config: GlobalModelConfig, rounds: int
) -> Any:
    import lightgbm

    data = lightgbm.Dataset(
        x,
        y,
        feature_name=names,
        categorical_feature=[n for n in ("holiday",) if n in names],
        free_raw_data=True,
    )
    params = {**config.params, "num_threads": config.threads}
    return lightgbm.train(params, data, num_boost_round=rounds)


def predict(model: Model, inputs: Inputs, origins: Index, horizon: int) -> Matrix:
    """Forecasts in units from each of ``origins``: ``(series, origins, horizon)``."""
    n = inputs.y.shape[0]
    rows = Rows.grid(n, origins, horizon)
    x = features(inputs, rows)
    scaled = model.predict(x) + x[:, BASELINE]
    units = np.maximum(scaled, 0.0) * inputs.trailing.scale[rows.series]
    return np.asarray(units.reshape(n, len(origins), horizon), dtype=np.float64)
