"""Property: whatever history it gets, the forecaster publishes finite, ordered numbers.

DynamoDB cannot store NaN or infinity, and a planner cannot read an interval that does not
contain its point, so for every series and horizon step ``0 <= lower <= point <= upper`` and
all three are finite, at 80 % and 95 %: for histories that are all censored, one day long,
all zeros, or hold one huge value, and for mixes of those across series.

The forecaster is given covariates, as the job gives them, so that a history long enough
for the global LightGBM model (``190 + 2 * horizon`` days with the default configuration,
246 at 28; see :meth:`pipeline.forecasting.global_model.Plan.of`) is forecast with it:
long histories are drawn as runs of a few values, and pinned examples give it the shapes
above; each asserts whether the global model ran (the forecast says), and the statistics
count the drawn examples that reached it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from pipeline.forecasting.forecaster import Covariates, ForecasterConfig, forecast

NAN = float("nan")
START = pd.Timestamp("2022-01-03")

#: A day of demand: censored/unlaunched (NaN), none, ordinary counts, or a huge value
#: (the contract allows 1e9 units in one event; the larger ones are beyond any contract).
DAY = st.one_of(
    st.just(NAN),
    st.just(0.0),
    st.integers(0, 30).map(float),
    st.sampled_from([1e9, 1e12, 1e300, 1.7e308]),
    st.floats(0, 1e6),
)


def global_days(horizon: int) -> int:
    """The shortest history the global model runs on at ``horizon`` (default config): 91
    days behind the first of 8 weekly training origins (its 91-day trailing mean), a
    horizon to the first of 8 weekly held-out origins, a horizon after the last."""
    return 91 + 7 * 7 + horizon + 7 * 7 + horizon + 1


@st.composite
def histories(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], int]:
    series = draw(st.integers(1, 4))
    days = draw(st.integers(1, 120))
    horizon = draw(st.integers(1, 28))
    rows = draw(
        st.lists(st.lists(DAY, min_size=days, max_size=days), min_size=series, max_size=series)
    )
    return np.array(rows, dtype=np.float64), horizon


@st.composite
def long_histories(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], int]:
    """Histories long enough for the global model, each series a few runs of one day's
    value (a long censored stretch, a launch late in the window, one huge day)."""
    series = draw(st.integers(1, 3))
    horizon = draw(st.integers(1, 28))
    days = global_days(horizon) + draw(st.integers(0, 30))
    rows = []
    for _ in range(series):
        runs = draw(st.lists(st.tuples(DAY, st.integers(1, days)), min_size=1, max_size=4))
        row = np.concatenate([np.full(length, value) for value, length in runs])
        # Cut to ``days``, padded in front by the first value (or unlaunched).
        pad = draw(st.sampled_from([NAN, float(row[0])]))
        rows.append(np.concatenate([np.full(max(0, days - len(row)), pad), row])[-days:])
    return np.array(rows, dtype=np.float64), horizon


def _long(*rows: list[float]) -> npt.NDArray[np.float64]:
    return np.array(rows, dtype=np.float64)


LONG = global_days(28)  # 246


Case = tuple[npt.NDArray[np.float64], int, bool | None]


def drawn(case: tuple[npt.NDArray[np.float64], int]) -> Case:
    """A drawn case: whether the global model has anything to learn from is not known."""
    return (*case, None)


@settings(max_examples=150, deadline=None)
@given(st.one_of(histories(), long_histories()).map(drawn))
# The shape the reliability suite found: the first days censored (a shelf that started
# empty), so one horizon step had no calibration error at all and its quantile was NaN.
@example((np.array([[NAN, NAN, 0.0]]), 2, False))
# A huge value next to an all-censored series: squared errors overflowed, the blend
# weights became 0/0 and the censored series' forecast NaN.
@example((np.array([[NAN, NAN], [NAN, 1e300]]), 1, False))
@example((np.full((3, 60), NAN), 28, False))  # all censored
@example((np.array([[5.0]]), 7, False))  # a single day
@example((np.zeros((2, 90)), 28, False))  # all zeros
@example((np.concatenate([np.zeros((1, 59)), [[1e12]]], axis=1), 14, False))  # one huge value
# The same shapes long enough for the global model. With nothing known at any of its
# training targets (all censored, one day only) it has nothing to learn: the blend alone.
@example((np.full((3, LONG), NAN), 28, False))  # all censored
@example((_long([NAN] * (LONG - 1) + [5.0]), 28, False))  # one day alone
@example((_long([NAN] * (LONG - 1) + [5.0], [2.0] * LONG), 28, True))  # one day, beside a series
@example((np.zeros((2, LONG)), 28, True))  # all zeros
@example((_long([0.0] * (LONG - 1) + [1e12]), 28, True))  # one huge value, on the last day
@example((_long([3.0] * 100 + [1.7e308] + [3.0] * (LONG - 101)), 28, True))  # one in training
@example((_long([NAN] * LONG, [1.0] * (LONG - 1) + [1e300]), 28, True))  # huge beside censored
@example((_long([NAN] * LONG, [2.0] * 100 + [1e300] + [2.0] * (LONG - 101)), 28, True))
@example((_long([NAN] * 200 + [4.0] * (LONG - 200), [1.0] * LONG), 28, True))  # launched late
@example((_long([NAN] * (global_days(1) - 1) + [1e12], [0.0] * global_days(1)), 1, True))
def test_given_any_history_when_forecasting_then_every_number_is_finite_and_ordered(
    case: Case,
) -> None:
    history, horizon, learns = case
    series, days = history.shape
    covariates = Covariates(
        start=START,
        groups={"all": np.zeros(series, dtype=np.int64), "sku": np.arange(series)},
    )

    result = forecast(history, ForecasterConfig(horizon=horizon), covariates)

    # The premise: the global model runs only on a history long enough for it, and the
    # pinned long cases reach it, but where nothing is known for it to learn from.
    long_enough = days >= global_days(horizon)
    assert result.global_model <= long_enough
    if learns is not None:
        assert result.global_model == learns
    if not long_enough:
        event("global model: history too short")
    elif result.global_model:
        event("global model: ran")
        event(f"global model ran beside an all-censored series: {np.isnan(history).all(1).any()}")
        event(f"global model ran on a value >= 1e12: {(history >= 1e12).any()}")
    else:
        event("global model: long enough, nothing to learn from (blend alone)")
    point = result.point
    assert point.shape == (history.shape[0], horizon)
    assert np.isfinite(point).all()
    for level in (0.8, 0.95):
        lower, upper = result.bounds(level)
        assert np.isfinite(lower).all()
        assert np.isfinite(upper).all()
        assert (lower >= 0).all()
        assert (lower <= point).all()
        assert (point <= upper).all()
    # The 95 % interval holds the 80 % one.
    lo80, hi80 = result.bounds(0.8)
    lo95, hi95 = result.bounds(0.95)
    assert (lo95 <= lo80).all()
    assert (hi80 <= hi95).all()
