"""Only a finished day is an actual: the history and ForecastBias leave out the day in
progress at each location (and any day after it)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from pipeline.forecasting.job import FinishedDays, bias_sums
from pipeline.lake.locations import Location, Locations

LOCATIONS = Locations(
    rows={
        "LA": Location("LA", "America/Los_Angeles"),
        "TOKYO": Location("TOKYO", "Asia/Tokyo"),
    }
)
#: 20:00 UTC on 30 June: 13:00 on 30 June in Los Angeles, 05:00 on 1 July in Tokyo.
NOW = datetime(2024, 6, 30, 20, 0, tzinfo=UTC)


def _demand(days: list[date], locations: list[str], sold: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "sku_id": "S",
                "location_id": loc,
                "date": d,
                "units_sold": sold,
                "stockout": False,
            }
            for loc in locations
            for d in days
        ]
    )


DAYS = [date(2024, 6, 28), date(2024, 6, 29), date(2024, 6, 30), date(2024, 7, 1)]


def test_given_the_day_in_progress_when_actuals_taken_then_each_location_ends_at_its_midnight() -> (
    None
):
    finished = FinishedDays(LOCATIONS, NOW)

    actuals = finished.actuals(_demand(DAYS, ["LA", "TOKYO", "UTC-STORE"]))

    last = actuals.groupby("location_id")["date"].max().to_dict()
    assert last == {
        "LA": date(2024, 6, 29),  # 30 June is in progress there
        "TOKYO": date(2024, 6, 30),  # 1 July has begun there: 30 June is over
        "UTC-STORE": date(2024, 6, 29),
    }


def test_given_a_day_just_ended_when_now_is_its_midnight_then_it_is_an_actual() -> None:
    midnight_la = datetime(2024, 7, 1, 7, 0, tzinfo=UTC)  # 00:00 on 1 July, UTC-7 (summer)
    just_before = midnight_la - timedelta(microseconds=1)

    assert FinishedDays(LOCATIONS, midnight_la).first_unfinished("LA") == date(2024, 7, 1)
    assert FinishedDays(LOCATIONS, just_before).first_unfinished("LA") == date(2024, 6, 30)


def test_given_locations_in_several_zones_when_history_taken_then_it_ends_where_all_ended() -> None:
    finished = FinishedDays(LOCATIONS, NOW)
    actuals = finished.actuals(_demand(DAYS, ["LA", "TOKYO"]))

    history, end = finished.history(actuals)

    # Tokyo's 30 June is an actual, but LA's is not: the common calendar ends on 29 June.
    assert end == pd.Timestamp("2024-06-29")
    assert pd.to_datetime(history["date"]).max() == end
    assert len(history) == 4


def test_given_a_backfill_when_actuals_taken_then_every_location_ends_before_as_of() -> None:
    finished = FinishedDays(LOCATIONS, NOW, as_of=date(2024, 6, 29))

    actuals = finished.actuals(_demand(DAYS, ["LA", "TOKYO"]))

    assert actuals["date"].max() == date(2024, 6, 28)


def test_given_forecasts_of_a_day_in_progress_when_bias_summed_then_that_day_is_left_out() -> None:
    # The forecast said 10 a day; the 30 June row is partial (3 units by 13:00 in LA).
    archive = pd.DataFrame(
        [
            {"sku_id": "S", "location_id": "LA", "date": d, "forecast_val": 10.0}
            for d in (date(2024, 6, 29), date(2024, 6, 30))
        ]
    )
    demand = pd.concat(
        [_demand([date(2024, 6, 29)], ["LA"]), _demand([date(2024, 6, 30)], ["LA"], sold=3)]
    )

    unfiltered = bias_sums(archive, demand)
    filtered = bias_sums(archive, FinishedDays(LOCATIONS, NOW).actuals(demand))

    assert unfiltered == (20.0, 13.0)  # the partial day would read as +54 % bias
    assert filtered == (10.0, 10.0)
