"""Bounded lateness: events too far from their arrival are held aside, not merged.

A scheduled run rebuilds ``daily_demand`` from the earliest event day it touches, so one
event with a reset clock (2000-01-02) would make it rewrite every day since, at a cost no
job timeout covers, and every following run would start the same work again. Lateness is
measured against the event's **arrival** (the arrival day in its raw key, the stream's own
clock), so it does not depend on when the job happens to run:

- ``too_late``: the event day is more than ``horizon_days`` before its arrival day;
- ``future``: the event day is more than ``future_days`` after it (a clock far ahead).

Such an event is written to the compaction quarantine beside the raw object's rejected
lines, with its reason and the record as a contract event, counted (``HeldAsideRecords``),
and loaded deliberately by a backfill run (``fmcg compact --backfill``), whose work is
bounded by the quarantine objects it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Final

from pipeline.compaction.parse import Rejected

if TYPE_CHECKING:
    import pyarrow as pa

#: Five weeks: a store whose tills sync after a month-end close, plus a week. Each run then
#: rebuilds at most this many days of ``daily_demand`` (the template's LatenessHorizonDays).
HORIZON_DAYS: Final = 35
#: A till clock one day ahead of the stream is a time zone mistake, not the future.
FUTURE_DAYS: Final = 1
TOO_LATE: Final = "too_late"
FUTURE: Final = "future"
HELD_REASONS: Final = (TOO_LATE, FUTURE)


@dataclass(frozen=True)
class Lateness:
    """How far an event day may be from its arrival day and still be merged."""

    horizon_days: int = HORIZON_DAYS
    future_days: int = FUTURE_DAYS

    def reason(self, event_day: date, arrival_day: date) -> str | None:
        """``too_late``, ``future`` or ``None`` (merged)."""
        if event_day < arrival_day - timedelta(days=self.horizon_days):
            return TOO_LATE
        if event_day > arrival_day + timedelta(days=self.future_days):
            return FUTURE
        return None


def hold_aside(
    days: dict[date, pa.Table], arrival_day: date, lateness: Lateness
) -> tuple[dict[date, pa.Table], list[Rejected]]:
    """Split one raw object's rows by event day into the merged ones and the held ones."""
    kept: dict[date, pa.Table] = {}
    held: list[Rejected] = []
    for day, rows in days.items():
        reason = lateness.reason(day, arrival_day)
        if reason is None:
            kept[day] = rows
            continue
        detail = (
            f"event day {day.isoformat()}, arrival day {arrival_day.isoformat()}, "
            f"horizon {lateness.horizon_days} days before and {lateness.future_days} after"
        )
        held.extend(Rejected(0, reason, detail, record) for record in contract_records(rows))
    return kept, held


def contract_records(rows: pa.Table) -> list[str]:
    """The rows as contract events (NDJSON lines), as a backfill parses them again."""
    records = []
    for row in rows.to_pylist():
        event = {k: v for k, v in row.items() if v is not None}
        event["event_time"] = row["event_time"].replace(tzinfo=UTC).isoformat()
        records.append(json.dumps(event, separators=(",", ":")))
    return records


def held_records(quarantine: bytes, reasons: tuple[str, ...] = HELD_REASONS) -> bytes:
    """The held-aside events of one compaction quarantine object, as a raw NDJSON body."""
    lines = []
    for line in quarantine.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("reason") in reasons:
            lines.append(entry["record"])
    return "".join(f"{line}\n" for line in lines).encode()
