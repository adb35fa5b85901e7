"""What the calendar knows about a location's day: holidays, declared events, closures.

Public holidays and widely observed days (Easter, Mother's Day, Halloween...) come from the
``holidays`` package for the location's country and subdivision. Users declare what no
library knows: recurring events (a benefit payout on fixed days of the month, a local fair)
and closure days (a store shut for a refit). A closure day's sales are not demand: the
forecaster reads them as unknown and forecasts 0 for a planned closure.

A declaration (YAML or JSON, the ``calendar`` job argument or ``--calendar`` of the CLI)::

    default: {country: US}             # every location not listed below
    locations:
      CA_1: {country: US, subdivision: CA}
    events:
      - name: snap_ca                   # a feature of its own for the model
        locations: [CA_1, CA_2]         # omitted: every location
        days_of_month: [1, 2, 3]        # and/or
        annual: ["12-24"]               # and/or
        dates: ["2016-02-07"]
    closures:
      - annual: ["12-25"]
        locations: [CA_1]

Every value is a whole-array lookup at forecast time: ``CalendarFeatures`` holds
``(locations, days)`` arrays, and series index them by their location.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

#: Holiday categories read where the country defines them: the days off and the days
#: shoppers keep (Easter Sunday, Mother's Day, Halloween), which move FMCG sales as much.
HOLIDAY_CATEGORIES = ("public", "unofficial")
#: How far before and after a holiday its effect is looked for (stock-up, hangover days).
HOLIDAY_REACH = 7


@dataclass(frozen=True)
class Place:
    """Where a location is, for its holidays."""

    country: str = "US"
    subdivision: str | None = None


@dataclass(frozen=True)
class DayRule:
    """Days an event or closure falls on, at some locations (``None``: every location)."""

    name: str
    locations: frozenset[str] | None = None
    days_of_month: frozenset[int] = frozenset()
    annual: frozenset[tuple[int, int]] = frozenset()
    dates: frozenset[date] = frozenset()

    def mask(self, days: pd.DatetimeIndex) -> npt.NDArray[np.bool_]:
        month_day = zip(days.month, days.day, strict=True)
        on = np.isin(days.day, list(self.days_of_month))
        on |= np.array([md in self.annual for md in month_day], dtype=np.bool_)
        on |= np.array([d in self.dates for d in days.date], dtype=np.bool_)
        return np.asarray(on, dtype=np.bool_)

    def applies_to(self, location: str) -> bool:
        return self.locations is None or location in self.locations


@dataclass(frozen=True)
class CalendarSpec:
    """The places of the locations, the declared events and the closures."""

    default: Place = field(default_factory=Place)
    places: Mapping[str, Place] = field(default_factory=dict)
    events: tuple[DayRule, ...] = ()
    closures: tuple[DayRule, ...] = ()

    def place(self, location: str) -> Place:
        return self.places.get(location, self.default)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CalendarSpec:
        """Read a declaration (see the module docstring); a mistake is a TerminalError."""
        if not isinstance(raw, dict):
            raise TerminalError("calendar: expected a mapping at the top level")
        unknown = set(raw) - {"default", "locations", "events", "closures"}
        if unknown:
            raise TerminalError(f"calendar: unknown keys {sorted(unknown)}")
        return cls(
            default=_place(raw.get("default") or {}, "default"),
            places={
                str(k): _place(v, f"locations.{k}") for k, v in (raw.get("locations") or {}).items()
            },
            events=tuple(
                _rule(r, f"events[{i}]", named=True) for i, r in enumerate(raw.get("events") or [])
            ),
            closures=tuple(
                _rule(r, f"closures[{i}]", named=False)
                for i, r in enumerate(raw.get("closures") or [])
            ),
        )

    @classmethod
    def read(cls, text: str) -> CalendarSpec:
        """Parse YAML (JSON is YAML too)."""
        import yaml

        try:
            return cls.from_dict(yaml.safe_load(text) or {})
        except yaml.YAMLError as e:
            raise TerminalError(f"calendar: not YAML: {str(e).splitlines()[0]}") from e


def _place(raw: Any, where: str) -> Place:
    if not isinstance(raw, dict) or set(raw) - {"country", "subdivision"}:
        raise TerminalError(f"calendar: {where} takes country and subdivision")
    place = Place(
        country=str(raw.get("country", "US")),
        subdivision=None if raw.get("subdivision") is None else str(raw["subdivision"]),
    )
    _holidays(place, [2020])  # fails now, with the place named, rather than mid-run
    return place


def _rule(raw: Any, where: str, *, named: bool) -> DayRule:
    allowed = {"name", "locations", "days_of_month", "annual", "dates"}
    if not isinstance(raw, dict) or set(raw) - allowed:
        raise TerminalError(f"calendar: {where} takes {', '.join(sorted(allowed))}")
    if named and not raw.get("name"):
        raise TerminalError(f"calendar: {where} needs a name")
    try:
        days = frozenset(int(d) for d in raw.get("days_of_month") or [])
        annual = frozenset(
            (int(m), int(d)) for m, d in (str(x).split("-") for x in raw.get("annual") or [])
        )
        dates = frozenset(date.fromisoformat(str(x)) for x in raw.get("dates") or [])
    except ValueError as e:
        raise TerminalError(f"calendar: {where}: {e}") from e
    if any(not 1 <= d <= 31 for d in days) or any(
        not (1 <= m <= 12 and 1 <= d <= 31) for m, d in annual
    ):
        raise TerminalError(f"calendar: {where}: day of month 1..31, annual as MM-DD")
    if not (days or annual or dates):
        raise TerminalError(f"calendar: {where} falls on no day")
    locations = raw.get("locations")
    return DayRule(
        name=str(raw.get("name") or "closure"),
        locations=None if locations is None else frozenset(str(x) for x in locations),
        days_of_month=days,
        annual=annual,
        dates=dates,
    )


def _holidays(place: Place, years: Iterable[int]) -> dict[date, str]:
    import holidays

    try:
        country = holidays.country_holidays(place.country, subdiv=place.subdivision)
    except NotImplementedError as e:
        raise TerminalError(f"calendar: no holidays known for country {place.country!r}") from e
    except (KeyError, ValueError) as e:  # an unknown subdivision
        raise TerminalError(
            f"calendar: no subdivision {place.subdivision!r} in {place.country!r}"
        ) from e
    categories = tuple(c for c in HOLIDAY_CATEGORIES if c in country.supported_categories)
    found = holidays.country_holidays(
        place.country, subdiv=place.subdivision, years=list(years), categories=categories
    )
    # "Christmas Day (observed)" is the day off for Christmas: the same kind of day.
    return {
        d: sorted(n.replace(" (observed)", "") for n in names.split("; "))[0]
        for d, names in found.items()
    }


@dataclass(frozen=True)
class CalendarFeatures:
    """Per location and day: holiday code (0: none), distance to the next and from the
    last holiday (capped at ``HOLIDAY_REACH``), declared events and closures."""

    locations: list[str]
    start: pd.Timestamp
    holiday: npt.NDArray[np.int16]  # (locations, days)
    to_holiday: npt.NDArray[np.int8]
    from_holiday: npt.NDArray[np.int8]
    events: npt.NDArray[np.bool_]  # (events, locations, days)
    closed: npt.NDArray[np.bool_]  # (locations, days)
    event_names: list[str]

    def rows(self, locations: Sequence[str]) -> npt.NDArray[np.int64]:
        """The row of each series' location."""
        where = {loc: i for i, loc in enumerate(self.locations)}
        return np.array([where[str(loc)] for loc in locations], dtype=np.int64)


def calendar_features(
    spec: CalendarSpec, locations: Sequence[str], start: pd.Timestamp, days: int
) -> CalendarFeatures:
    """The calendar of ``locations`` over ``days`` days from ``start``."""
    unique = sorted({str(loc) for loc in locations})
    span = pd.date_range(start - pd.Timedelta(days=HOLIDAY_REACH), periods=days + 2 * HOLIDAY_REACH)
    inner = slice(HOLIDAY_REACH, HOLIDAY_REACH + days)
    years = range(span[0].year, span[-1].year + 1)
    names_by_place = {p: _holidays(p, years) for p in {spec.place(loc) for loc in unique}}
    every_name = sorted({n for named in names_by_place.values() for n in named.values()})
    codes = {n: i + 1 for i, n in enumerate(every_name)}
    holiday = np.zeros((len(unique), len(span)), dtype=np.int16)
    for row, loc in enumerate(unique):
        named = names_by_place[spec.place(loc)]
        holiday[row] = [codes.get(named.get(d), 0) for d in span.date]  # type: ignore[arg-type]
    is_holiday = holiday > 0
    events = np.zeros((len(spec.events), len(unique), days), dtype=bool)
    closed = np.zeros((len(unique), days), dtype=bool)
    inside = span[inner]
    for k, rule in enumerate(spec.events):
        mask = rule.mask(inside)
        for row, loc in enumerate(unique):
            events[k, row] = mask & rule.applies_to(loc)
    for rule in spec.closures:
        mask = rule.mask(inside)
        for row, loc in enumerate(unique):
            closed[row] |= mask & rule.applies_to(loc)
    return CalendarFeatures(
        locations=unique,
        start=pd.Timestamp(start),
        holiday=holiday[:, inner],
        to_holiday=_distance(is_holiday, forward=True)[:, inner],
        from_holiday=_distance(is_holiday, forward=False)[:, inner],
        events=events,
        closed=closed,
        event_names=[r.name for r in spec.events],
    )


def _distance(marks: npt.NDArray[np.bool_], *, forward: bool) -> npt.NDArray[np.int8]:
    """Days to the next (``forward``) or since the last marked day, capped at the reach."""
    out = np.full(marks.shape, HOLIDAY_REACH, dtype=np.int8)
    for step in range(HOLIDAY_REACH - 1, -1, -1):
        shifted = np.zeros_like(marks)
        if forward:
            shifted[:, : marks.shape[1] - step] = marks[:, step:]
        else:
            shifted[:, step:] = marks[:, : marks.shape[1] - step]
        out[shifted] = step
    return out
