"""Property: whatever history it gets, the forecaster publishes finite, ordered numbers.

DynamoDB cannot store NaN or infinity, and a planner cannot read an interval that does not
contain its point, so for every series and horizon step ``0 <= lower <= point <= upper`` and
all three are finite, at 80 % and 95 %: for histories that are all censored, one day long,
all zeros, or hold one huge value, and for mixes of those across series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.forecasting.forecaster import ForecasterConfig, forecast

NAN = float("nan")

#: A day of demand: censored/unlaunched (NaN), none, ordinary counts, or a huge value
#: (the contract allows 1e9 units in one event; the larger ones are beyond any contract).
DAY = st.one_of(
    st.just(NAN),
    st.just(0.0),
    st.integers(0, 30).map(float),
    st.sampled_from([1e9, 1e12, 1e300, 1.7e308]),
    st.floats(0, 1e6),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], int]:
    series = draw(st.integers(1, 4))
    days = draw(st.integers(1, 120))
    horizon = draw(st.integers(1, 28))
    rows = draw(
        st.lists(st.lists(DAY, min_size=days, max_size=days), min_size=series, max_size=series)
    )
    return np.array(rows, dtype=np.float64), horizon


@settings(max_examples=150, deadline=None)
@given(histories())
# The shape the reliability suite found: the first days censored (a shelf that started
# empty), so one horizon step had no calibration error at all and its quantile was NaN.
@example((np.array([[NAN, NAN, 0.0]]), 2))
# A huge value next to an all-censored series: squared errors overflowed, the blend
# weights became 0/0 and the censored series' forecast NaN.
@example((np.array([[NAN, NAN], [NAN, 1e300]]), 1))
@example((np.full((3, 60), NAN), 28))  # all censored
@example((np.array([[5.0]]), 7))  # a single day
@example((np.zeros((2, 90)), 28))  # all zeros
@example((np.concatenate([np.zeros((1, 59)), [[1e12]]], axis=1), 14))  # one huge value
def test_given_any_history_when_forecasting_then_every_number_is_finite_and_ordered(
    case: tuple[npt.NDArray[np.float64], int],
) -> None:
    history, horizon = case

    result = forecast(history, ForecasterConfig(horizon=horizon))

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
