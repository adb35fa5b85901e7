"""One raw object as a run reads it: fetched, parsed, late events held aside.

Both engines read raw objects through :func:`fetch_raw_object`, so they quarantine, hold
aside and count the same lines. An object the job may not read (a KMS key its role cannot
use, an object archived to Glacier) is quarantined with its reason and counted, and the run
goes on with the others: one such object must not stop every run. Access to the bucket
itself, and transient failures, still fail the run (the next one retries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pipeline.aws_errors import AwsTerminalError
from pipeline.compaction.dedupe import split_by_event_date
from pipeline.compaction.lateness import Lateness, hold_aside
from pipeline.compaction.parse import Rejected, parse_raw_object
from pipeline.compaction.state import arrival_day

if TYPE_CHECKING:
    from datetime import date

    import pyarrow as pa

    from pipeline.compaction.store import LakeStore

UNREADABLE: Final = "unreadable_object"
#: GET failures that concern one object, not the bucket or the job's whole access.
UNREADABLE_CODES: Final = frozenset(
    {
        "AccessDenied",
        "InvalidObjectState",
        "KMS.DisabledException",
        "KMS.KMSInvalidStateException",
        "KMS.NotFoundException",
        "KMS.AccessDeniedException",
    }
)


@dataclass(frozen=True)
class RawRows:
    """One raw object read for a run: rows by event day, rejected and held-aside lines."""

    days: dict[date, pa.Table]
    #: Lines to the compaction quarantine: type errors, held-aside events, an unreadable
    #: object's one entry alike.
    rejected: list[Rejected]
    held: int = 0
    unreadable: int = 0

    @property
    def rows(self) -> int:
        return sum(rows.num_rows for rows in self.days.values())

    @property
    def quarantined(self) -> int:
        return len(self.rejected) - self.held


def read_raw_object(data: bytes, key: str, lateness: Lateness | None) -> RawRows:
    """Parse a raw object (:mod:`pipeline.compaction.parse`) and hold aside, by its key's
    arrival day, what ``lateness`` does not merge (``None``: merge everything, a backfill)."""
    parsed = parse_raw_object(data)
    days = split_by_event_date(parsed.table)
    arrival = arrival_day(key)
    if lateness is None or arrival is None:
        return RawRows(days, parsed.rejected)
    kept, held = hold_aside(days, arrival, lateness)
    return RawRows(kept, parsed.rejected + held, len(held))


def fetch_raw_object(
    store: LakeStore, bucket: str, key: str, lateness: Lateness | None
) -> RawRows | None:
    """GET and read one raw object: ``None`` when it was deleted since the listing, one
    ``unreadable_object`` entry when the job may not read it."""
    try:
        data = store.get(bucket, key)
    except AwsTerminalError as e:
        if e.code not in UNREADABLE_CODES:
            raise
        detail = f"{e.code}: {e.aws_message}"[:300]
        return RawRows({}, [Rejected(0, UNREADABLE, detail, "")], unreadable=1)
    return None if data is None else read_raw_object(data, key, lateness)
