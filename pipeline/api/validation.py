"""Pure checks of request input, each failing with a :class:`BadRequest` that says what to fix."""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from pipeline.api.errors import BadRequest

#: Ids of the sales event contract: ``#`` and ``/`` are key delimiters and never allowed.
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
DATE_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}$"
MAX_RANGE_DAYS: Final = 366

_ID = re.compile(ID_PATTERN)
_DATE = re.compile(DATE_PATTERN)


def check_id(name: str, value: str) -> str:
    """``value`` when it is a contract id (``[A-Za-z0-9_-]``, 1..64 characters)."""
    if not _ID.match(value):
        raise BadRequest(f"{name} must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")
    return value


def parse_date(name: str, value: str) -> date:
    """A calendar date written ``yyyy-mm-dd``."""
    if not _DATE.match(value):
        raise BadRequest(f"{name} must be a date written yyyy-mm-dd, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} is not a calendar date: {value!r}") from None


def check_range(start: date, end: date) -> int:
    """The number of days in ``start..end`` (both included), at most :data:`MAX_RANGE_DAYS`."""
    if end < start:
        raise BadRequest(f"to ({end}) is before from ({start})")
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise BadRequest(f"from..to spans {days} days; at most {MAX_RANGE_DAYS} are allowed")
    return days
