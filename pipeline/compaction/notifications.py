"""S3 event notifications of the raw zone, as the compaction job reads them from its queue.

The raw bucket notifies ``s3:ObjectCreated:*`` under ``sales/`` to an SQS queue
(``RawEventsQueue`` in infra/template.yaml); the job drains it
(:func:`pipeline.compaction.discovery.discover`), so finding new raw objects costs what is new.
This module is the pure part: one message body in, the raw objects it names out. It never
raises on a body: S3's own ``s3:TestEvent`` (sent when the configuration is set), another
bucket's event, a key outside ``sales/YYYY/MM/DD/...json`` or a body that is not S3's JSON
at all name no raw object and are counted as ignored by the caller, never blocking a run.

The shape is S3's (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html):
``Records[].s3.object`` holds ``key`` (URL-encoded, spaces as ``+``), ``size``, ``eTag`` and
``sequencer``, a hex string that orders the events of one key: of two, the greater
(compared after right-padding the shorter with zeros) happened later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_plus

from pipeline.compaction.state import arrival_day

#: The only event family the job acts on; ``ObjectRemoved`` and the rest are ignored.
OBJECT_CREATED: Final = "ObjectCreated:"


@dataclass(frozen=True)
class Notified:
    """One raw object an ``ObjectCreated`` event names."""

    key: str
    etag: str
    size: int
    sequencer: str = ""

    def is_after(self, other: Notified) -> bool:
        """Whether this event on the key happened after ``other`` (S3's sequencer order)."""
        width = max(len(self.sequencer), len(other.sequencer))
        return self.sequencer.upper().ljust(width, "0") > other.sequencer.upper().ljust(width, "0")


def raw_objects_named(body: str, raw_bucket: str) -> list[Notified]:
    """The raw objects an S3 event message names (empty: nothing the job should read)."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return []
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        return []  # an s3:TestEvent, or not S3's message at all
    named = []
    for record in records:
        notified = _created(record, raw_bucket)
        if notified is not None:
            named.append(notified)
    return named


def _created(record: Any, raw_bucket: str) -> Notified | None:
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        return None
    if not str(record.get("eventName", "")).startswith(OBJECT_CREATED):
        return None
    s3 = record.get("s3")
    if not isinstance(s3, dict) or not isinstance(s3.get("object"), dict):
        return None
    if not isinstance(s3.get("bucket"), dict) or s3["bucket"].get("name") != raw_bucket:
        return None
    obj = s3["object"]
    if not isinstance(obj.get("key"), str):
        return None
    key = unquote_plus(obj["key"])
    if arrival_day(key) is None or not key.endswith(".json"):
        return None
    try:
        size = int(obj.get("size", 0))
    except (TypeError, ValueError):
        size = 0
    return Notified(key, str(obj.get("eTag", "")), size, str(obj.get("sequencer", "")))


def latest_by_key(notified: list[Notified]) -> dict[str, Notified]:
    """One entry per key: its latest event (a retried batch overwriting the key sends a
    second one; both may be in the queue at once)."""
    latest: dict[str, Notified] = {}
    for n in notified:
        seen = latest.get(n.key)
        if seen is None or n.is_after(seen):
            latest[n.key] = n
    return latest
