"""Table maintenance where Glue's table optimizers do not run (locally; any account
without them): bin-pack a finished day's small files, expire old snapshots.

Every compaction run adds one data file to each day it touches, so an hourly job leaves a
day with ~24 small files in ``sales`` (and each rebuilt ``daily_demand`` day replaces its
files, leaving the old ones to the expired snapshots). :func:`maintain` rewrites each
finished day that holds ``min_files`` or more into one file, **one commit per day** whose
rows are exactly the day's rows before it (an Iceberg overwrite of that partition: the
delete and the append land in one catalog commit, so no reader's current snapshot ever
lacks them), then expires the snapshots older than ``retention_days`` (always keeping the
current one).

**Retention is time travel's reach**: a reader can query the table as of any snapshot still
kept (``FOR TIMESTAMP AS OF`` in Athena and Spark), so the forecasts of a past run can be
checked against the data they saw for ``retention_days``; older states are gone. Files that
no kept snapshot references are then orphans: Glue's orphan file deletion removes them on
AWS; locally they stay in the bucket (they are never read).

A maintenance commit and a compaction commit may race: Glue (and the emulator) refuse the
second commit's stale table version, the loser raises
:class:`~pipeline.errors.TransientError` having changed nothing, and its next run starts
from the winner's snapshot. A day is only packed once ``settle_days`` have passed, so the
race is rare.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from pipeline.lake.tables import (
    TABLES,
    TableSpec,
    day_filter,
    days_filter,
    file_day,
    iceberg_catalog,
    load_table,
    translated,
)

if TYPE_CHECKING:
    import boto3
    from pyiceberg.table import Table

    from pipeline.job_protocol import Progress

#: How far back days are packed: the lateness horizon (an older day gets no new files).
LOOKBACK_DAYS: Final = 35
#: A day is packed once this many days have passed since it ended everywhere.
SETTLE_DAYS: Final = 2
#: Snapshots (time travel) kept this long.
RETENTION_DAYS: Final = 7
MIN_FILES: Final = 2


@dataclass(frozen=True)
class MaintenanceReport:
    days_packed: int = 0
    files_replaced: int = 0
    snapshots_expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def maintain(
    session: boto3.session.Session,
    *,
    database: str,
    now: datetime | None = None,
    lookback_days: int = LOOKBACK_DAYS,
    settle_days: int = SETTLE_DAYS,
    retention_days: int = RETENTION_DAYS,
    min_files: int = MIN_FILES,
    progress: Progress | None = None,
) -> MaintenanceReport:
    """Pack and expire every curated table (see the module doc); what it did.

    Its work is bounded by ``lookback_days`` days per table, not by the table's age.
    """
    now = now or datetime.now(UTC)
    last = now.date() - timedelta(days=settle_days + 1)
    days = [last - timedelta(days=i) for i in range(lookback_days)]
    catalog = iceberg_catalog(session)
    packed = replaced = expired = 0
    for n, spec in enumerate(TABLES):
        table = load_table(catalog, database, spec)
        if table is not None:
            for day, files in _files_by_day(table, days).items():
                if files >= min_files:
                    _pack(table, spec, day)
                    packed, replaced = packed + 1, replaced + files
            expired += _expire(table, now - timedelta(days=retention_days))
        if progress is not None:
            progress("maintain", n + 1, len(TABLES))
    return MaintenanceReport(packed, replaced, expired)


def _files_by_day(table: Table, days: list[date]) -> dict[date, int]:
    name = ".".join(table.name())
    counts: dict[date, int] = {}
    with translated(f"plan {name}", name):
        for task in table.scan(row_filter=days_filter(days)).plan_files():
            day = file_day(task.file.partition)
            counts[day] = counts.get(day, 0) + 1
    return dict(sorted(counts.items()))


def _pack(table: Table, spec: TableSpec, day: date) -> None:
    """One commit: the day's files replaced by one file of the same rows."""
    name = ".".join(table.name())
    with translated(f"pack {name} {day}", name):
        rows = table.scan(row_filter=day_filter(day)).to_arrow()
        rows = rows.select(spec.schema.names).cast(spec.schema)
        transaction = table.transaction()
        transaction.overwrite(
            rows, overwrite_filter=day_filter(day), snapshot_properties={"fmcg.maintenance": "pack"}
        )
        transaction.commit_transaction()


def _expire(table: Table, before: datetime) -> int:
    """Expire the snapshots taken before ``before`` (never the current one); how many."""
    name = ".".join(table.name())
    current = table.current_snapshot()
    old = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < before.timestamp() * 1000
        and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if old:
        with translated(f"expire snapshots of {name}", name):
            table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)
