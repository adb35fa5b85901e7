"""The locations reference: each store's time zone, country and subdivision.

A day of demand is a store's calendar day, and a store's holidays are its country's (and
subdivision's), so both Glue jobs need to know where every location is. Most deployments
have one answer for every store: the template parameters ``DefaultTimeZone``,
``DefaultCountry`` and ``DefaultSubdivision`` (job arguments ``--default_time_zone``,
``--default_country``, ``--default_subdivision``; defaults ``UTC``, ``US``, none). A lake
whose stores differ adds a locations table to the curated bucket::

    s3://<curated>/reference/locations/*.csv | *.parquet
    columns: location_id (required), time_zone, country, subdivision

one row per location; an empty or missing value takes the default. Time zones are IANA
names (``America/Los_Angeles``), checked against the zone database at load time: an
unknown zone, a malformed country or a location listed twice is a
:class:`~pipeline.errors.ConfigurationError` naming the object and the row, never a
silent fall-back to UTC. A zone changed later applies to the days compaction recomputes
from then on; older days keep the calendar they were built with.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import ConfigurationError
from pipeline.lake.reference import ObjectReader, read_table, reference_objects

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import date, datetime


#: Where the locations table lives in the curated bucket.
LOCATIONS_PREFIX: Final = "reference/locations/"
LOCATION_COLUMNS: Final = ("location_id", "time_zone", "country", "subdivision")
DEFAULT_TIME_ZONE: Final = "UTC"
DEFAULT_COUNTRY: Final = "US"
#: Zone names that are UTC at every instant (no offset, no daylight saving time, ever).
UTC_ZONES: Final = frozenset(
    {
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "Etc/Universal",
        "Etc/Zulu",
        "UCT",
        "Universal",
        "Zulu",
        "Etc/GMT",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "Etc/GMT0",
        "Etc/Greenwich",
        "GMT",
        "GMT+0",
        "GMT-0",
        "GMT0",
        "Greenwich",
    }
)
_COUNTRY: Final = re.compile(r"[A-Z]{2,3}")


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a :class:`ConfigurationError` when the database lacks it."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"unknown time zone {name!r}: expected an IANA name such as 'Europe/Berlin' "
            "or 'America/Los_Angeles'"
        ) from None


def _country(value: str, where: str) -> str:
    code = value.strip().upper()
    if not _COUNTRY.fullmatch(code):
        raise ConfigurationError(
            f"{where}: country must be an ISO 3166 code such as 'US' or 'DE', got {value!r}"
        )
    return code


@dataclass(frozen=True)
class Location:
    """Where one location is: its IANA time zone, ISO country code and subdivision."""

    location_id: str
    time_zone: str = DEFAULT_TIME_ZONE
    country: str = DEFAULT_COUNTRY
    subdivision: str | None = None


@dataclass(frozen=True)
class LocationDefaults:
    """What a location not in the locations table gets (the template parameters)."""

    time_zone: str = DEFAULT_TIME_ZONE
    country: str = DEFAULT_COUNTRY
    subdivision: str | None = None

    def __post_init__(self) -> None:
        zone(self.time_zone)
        object.__setattr__(self, "country", _country(self.country, "default location"))
        object.__setattr__(self, "subdivision", self.subdivision or None)

    @classmethod
    def from_job_arguments(cls, options: Mapping[str, str]) -> LocationDefaults:
        """From ``--default_time_zone``, ``--default_country``, ``--default_subdivision``
        (each optional; an empty subdivision is none)."""
        return cls(
            time_zone=options.get("default_time_zone") or DEFAULT_TIME_ZONE,
            country=options.get("default_country") or DEFAULT_COUNTRY,
            subdivision=options.get("default_subdivision") or None,
        )


#: The job arguments :meth:`LocationDefaults.from_job_arguments` reads.
LOCATION_ARGUMENTS: Final = ("default_time_zone", "default_country", "default_subdivision")


@dataclass(frozen=True)
class Locations:
    """Every location's :class:`Location`: a row of the locations table, else the defaults."""

    defaults: LocationDefaults = field(default_factory=LocationDefaults)
    rows: Mapping[str, Location] = field(default_factory=dict)
    #: The table's rows that could not be used, each naming its object and row and why;
    #: those locations take the defaults (a job counts and quarantines them, and goes on).
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows.values():
            zone(row.time_zone)

    def get(self, location_id: str) -> Location:
        """The location's reference row (the defaults for a location not listed)."""
        row = self.rows.get(location_id)
        if row is not None:
            return row
        d = self.defaults
        return Location(location_id, d.time_zone, d.country, d.subdivision)

    def time_zone(self, location_id: str) -> str:
        return self.get(location_id).time_zone

    def zone_names(self) -> set[str]:
        """Every zone a location may have (the default's and the table's)."""
        return {self.defaults.time_zone, *(r.time_zone for r in self.rows.values())}

    @property
    def all_utc(self) -> bool:
        """Whether every location's day is the UTC day (then local dates are UTC dates)."""
        return self.zone_names() <= UTC_ZONES

    def today(self, location_id: str, now: datetime) -> date:
        """The calendar day in progress at the location at ``now`` (an aware datetime):
        every day before it has ended there."""
        return now.astimezone(zone(self.time_zone(location_id))).date()

    @classmethod
    def from_rows(
        cls, records: Iterable[Mapping[str, Any]], defaults: LocationDefaults, source: str
    ) -> Locations:
        """From table rows (``location_id`` and optional ``time_zone``, ``country``,
        ``subdivision``); empty values take the defaults."""
        rows: dict[str, Location] = {}
        for n, record in enumerate(records, start=1):
            _add(rows, record, defaults, f"{source} row {n}")
        return cls(defaults, rows)


def _add(
    rows: dict[str, Location], record: Mapping[str, Any], defaults: LocationDefaults, where: str
) -> None:
    """Check one row of the locations table and add it to ``rows``."""
    location_id = _text(record.get("location_id"))
    if location_id is None:
        raise ConfigurationError(f"{where}: location_id is missing")
    if location_id in rows:
        raise ConfigurationError(f"{where}: location {location_id!r} is listed twice")
    time_zone = _text(record.get("time_zone")) or defaults.time_zone
    try:
        zone(time_zone)
    except ConfigurationError as e:
        raise ConfigurationError(f"{where} ({location_id}): {e}") from None
    country = _text(record.get("country"))
    rows[location_id] = Location(
        location_id,
        time_zone,
        _country(country, where) if country else defaults.country,
        _text(record.get("subdivision")) or defaults.subdivision,
    )


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # NaN from pandas
        return None
    text = str(value).strip()
    return text or None


def load_locations(
    store: ObjectReader, curated_bucket: str, defaults: LocationDefaults | None = None
) -> Locations:
    """The locations table under ``s3://<curated_bucket>/reference/locations/`` (CSV or
    Parquet objects, read in key order) over ``defaults``; only the defaults without one.

    A row that cannot be used (no id, an unknown time zone, a country that is not a code,
    an id listed twice) is skipped and named in :attr:`Locations.skipped`, as is an object
    without a ``location_id`` column: one bad row must not stop every run.
    """
    defaults = defaults or LocationDefaults()
    rows: dict[str, Location] = {}
    skipped: list[str] = []
    objects = reference_objects(store, curated_bucket, LOCATIONS_PREFIX, (".csv", ".parquet"))
    for source, key, data in objects:
        table = read_table(source, key, data, strings=LOCATION_COLUMNS, what="the locations table")
        if "location_id" not in table.column_names:
            skipped.append(
                f"the locations table {source} has no location_id column "
                f"(expected {', '.join(LOCATION_COLUMNS)})"
            )
            continue
        present = [c for c in LOCATION_COLUMNS if c in table.column_names]
        for n, record in enumerate(table.select(present).to_pylist(), start=1):
            try:
                _add(rows, record, defaults, f"{source} row {n}")
            except ConfigurationError as e:
                skipped.append(str(e))
    return Locations(defaults, rows, tuple(skipped))


__all__ = [
    "DEFAULT_COUNTRY",
    "DEFAULT_TIME_ZONE",
    "LOCATIONS_PREFIX",
    "LOCATION_ARGUMENTS",
    "LOCATION_COLUMNS",
    "Location",
    "LocationDefaults",
    "Locations",
    "ObjectReader",
    "load_locations",
    "zone",
]
