"""The job's durable memory, and how a listing finds the raw objects not compacted yet.

The scheduled job finds new raw objects from the raw zone's event queue
(:mod:`pipeline.compaction.discovery`); then the manifest holds no object at all, only the
last event date (which the demand plan needs) and when the run committed: it does not grow
with the objects compacted before. Listing, described here, is the **sweep** that covers
what the queue cannot (objects written before notifications were configured, messages
expired), and what a run without a queue does.

The job keeps no Glue bookmarks (they know nothing of partitions replaced in place), so it
keeps its own manifest in the curated bucket (``_state/compaction/manifest.json``; the
leading underscore hides it from Athena, pyarrow and awswrangler). It is written once, last,
in a single PUT: it is the commit point of a run. A run that dies before it leaves the
manifest as it was, and the next run redoes the same raw objects, which de-duplication
against the curated partitions makes harmless.

Cost follows the new data, not the lake's history. A raw key's date is the arrival day of
its batch's first record (``sales/YYYY/MM/DD/...``), and a batch can only be written while
its records are still on the stream: at most the stream's retention (and the event source
mapping's maximum record age) after they arrived. So an arrival day is **open** until the
stream has moved ``open_days`` days past it (the newest arrival day in the raw zone, the
stream's own clock: an idle or stuck stream closes nothing) and then **closed**: nothing
new can appear under it. The manifest keeps the compacted objects (key and ETag, so an
object overwritten by a retried batch is seen as new) of the open days only, and a
**watermark**: every arrival day up to it was listed after it closed and compacted whole.
A run lists the keys after the watermark's day (one LIST with ``StartAfter``: the open
window, plus any closed day that still has objects waiting), never the whole raw zone;
once a closed day has nothing waiting, the watermark passes it and its entries are dropped.
The manifest and each run's listing are bounded by ``open_days`` days of arrivals,
whatever the lake's age.

The first run on a lake without a watermark (a new lake, or a manifest of the earlier,
unbounded format) lists the raw zone once to establish it.

A run takes at most ``max_objects`` new objects, oldest arrival first, and commits them: a
backlog after an outage drains over successive runs, each committing its progress, and a
closed day holds the watermark back until its last object is in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from pipeline.lake import RAW_SALES_PREFIX

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipeline.compaction.store import LakeStore, ObjectInfo

MANIFEST_KEY: Final = "_state/compaction/manifest.json"
_VERSION: Final = 2
#: Days an arrival day stays open: the stream's retention (7 days, the template's default)
#: plus one for a batch whose first record arrived just before midnight.
OPEN_DAYS: Final = 8
#: New raw objects one run takes at most (oldest arrival first); the rest wait for the next.
MAX_OBJECTS: Final = 10_000
_DAY_KEY: Final = re.compile(rf"^{re.escape(RAW_SALES_PREFIX)}(\d{{4}})/(\d{{2}})/(\d{{2}})/")


def arrival_day(key: str) -> date | None:
    """The arrival day in a raw key (``sales/YYYY/MM/DD/...``), ``None`` for other keys."""
    match = _DAY_KEY.match(key)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def day_prefix(day: date) -> str:
    return f"{RAW_SALES_PREFIX}{day:%Y/%m/%d}/"


@dataclass
class Manifest:
    """The compacted objects of the open arrival days, the watermark, the last event date."""

    #: Arrival day -> raw key -> ETag, for the days after the watermark only.
    days: dict[date, dict[str, str]] = field(default_factory=dict)
    #: Every arrival day up to this one is closed and compacted (``None``: not known yet).
    watermark: date | None = None
    max_event_date: date | None = None
    compacted_at: str | None = None

    def is_new(self, obj: ObjectInfo) -> bool:
        """A raw object not compacted yet, or overwritten with different content since."""
        day = arrival_day(obj.key)
        if day is None or not obj.key.endswith(".json"):
            return False
        if self.watermark is not None and day <= self.watermark:
            return False
        return self.days.get(day, {}).get(obj.key) != obj.etag

    @property
    def entries(self) -> int:
        return sum(len(objects) for objects in self.days.values())

    def to_json(self) -> bytes:
        body: dict[str, Any] = {
            "version": _VERSION,
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "max_event_date": None
            if self.max_event_date is None
            else self.max_event_date.isoformat(),
            "compacted_at": self.compacted_at,
            "days": {
                day.isoformat(): dict(sorted(objects.items()))
                for day, objects in sorted(self.days.items())
            },
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Manifest:
        doc = json.loads(body)
        end = doc.get("max_event_date")
        watermark = doc.get("watermark")
        days: dict[date, dict[str, str]] = {}
        if doc.get("version", 1) == 1:
            # The earlier format: every object ever, no watermark. The next run lists the
            # raw zone once, finds them compacted, and sets the watermark.
            for key, etag in doc.get("objects", {}).items():
                if (day := arrival_day(key)) is not None:
                    days.setdefault(day, {})[key] = etag
        else:
            days = {date.fromisoformat(d): dict(o) for d, o in doc.get("days", {}).items()}
        return cls(
            days,
            date.fromisoformat(watermark) if watermark else None,
            date.fromisoformat(end) if end else None,
            doc.get("compacted_at"),
        )


@dataclass(frozen=True)
class Pending:
    """What a run found: the objects it takes, and every arrival day with objects waiting."""

    objects: list[ObjectInfo]
    #: Arrival days that still hold new objects after the run takes ``objects``.
    waiting: frozenset[date] = frozenset()
    #: New objects left for later runs.
    left: int = 0
    #: Keys the run's LIST returned (the open window's objects).
    listed: int = 0
    #: The newest arrival day in the raw zone: the stream's clock.
    newest_day: date | None = None
    #: The receipt handles of the queue messages behind ``objects`` (deleted once the run
    #: has committed, :func:`pipeline.compaction.discovery.settle`).
    receipts: tuple[str, ...] = ()
    #: Queue messages that named no raw object (S3's test event, an unknown body).
    ignored: int = 0
    #: Found from the event queue (the manifest then records no object), not a listing.
    from_queue: bool = False


def load_manifest(store: LakeStore, bucket: str) -> Manifest:
    """The committed manifest, or an empty one on the first run."""
    body = store.get(bucket, MANIFEST_KEY)
    return Manifest() if body is None else Manifest.from_json(body)


def save_manifest(store: LakeStore, bucket: str, manifest: Manifest) -> None:
    """Write the manifest (one PUT)."""
    store.put(bucket, MANIFEST_KEY, manifest.to_json(), "application/json")


def list_after(manifest: Manifest) -> str:
    """The key a run's listing starts after: past every key of the watermark's day (``0``
    sorts after ``/``, so ``sales/2024/03/010`` follows ``sales/2024/03/01/...``)."""
    if manifest.watermark is None:
        return ""
    return day_prefix(manifest.watermark).removesuffix("/") + "0"


def find_new(
    store: LakeStore, raw_bucket: str, manifest: Manifest, *, max_objects: int = MAX_OBJECTS
) -> Pending:
    """The raw objects the next run compacts, oldest arrival first, at most ``max_objects``.

    One paginated LIST of the keys after the watermark's day: its cost follows the open
    window, not the lake's age (see the module).
    """
    listed = store.list(raw_bucket, RAW_SALES_PREFIX, start_after=list_after(manifest))
    days = [d for o in listed if (d := arrival_day(o.key)) is not None]
    new = sorted((o for o in listed if manifest.is_new(o)), key=lambda o: o.key)
    taken, rest = new[:max_objects], new[max_objects:]
    waiting = frozenset(d for o in rest if (d := arrival_day(o.key)) is not None)
    return Pending(taken, waiting, len(rest), len(listed), max(days, default=None))


def advance(manifest: Manifest, pending: Pending, *, open_days: int = OPEN_DAYS) -> None:
    """Record ``pending.objects`` as compacted, move the watermark, drop closed days.

    The watermark moves to the last closed day (``open_days`` before the newest arrival
    day) before the first day with objects still waiting; entries up to it are dropped.
    """
    for obj in pending.objects:
        day = arrival_day(obj.key)
        if day is not None:
            manifest.days.setdefault(day, {})[obj.key] = obj.etag
    if pending.newest_day is None:
        return
    closed = pending.newest_day - timedelta(days=open_days)
    if pending.waiting:
        closed = min(closed, min(pending.waiting) - timedelta(days=1))
    if manifest.watermark is None or closed > manifest.watermark:
        manifest.watermark = closed
    manifest.days = {d: o for d, o in manifest.days.items() if d > manifest.watermark}


def commit_run(
    store: LakeStore,
    bucket: str,
    manifest: Manifest,
    pending: Pending,
    *,
    compacted_at: datetime,
    open_days: int = OPEN_DAYS,
    progress: Callable[[str, int, int], None],
) -> None:
    """Commit a run: its raw objects join the manifest (found by a listing; from the queue
    the manifest keeps none), written last, in one PUT."""
    progress("commit", 0, 1)
    if pending.from_queue:
        # The queue remembers what is new; entries left by an earlier listing would only
        # make the manifest larger. The watermark stays where the last listing left it.
        manifest.days = {}
    else:
        advance(manifest, pending, open_days=open_days)
    manifest.compacted_at = compacted_at.isoformat()
    save_manifest(store, bucket, manifest)
    progress("commit", 1, 1)
