"""The job's durable memory: which raw objects are already in curated.

The job keeps no Glue bookmarks (they know nothing of partitions replaced in place), so it
keeps its own manifest in the curated
bucket (``_state/compaction/manifest.json``; the leading underscore hides it from Athena,
pyarrow and awswrangler). It is written once, last, in a single PUT: it is the commit point
of a run. A run that dies before it leaves the manifest as it was, and the next run redoes
the same raw objects, which de-duplication against the curated partitions makes harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipeline.compaction.store import LakeStore, ObjectInfo

MANIFEST_KEY: Final = "_state/compaction/manifest.json"
_VERSION: Final = 1


@dataclass
class Manifest:
    """Raw objects already compacted (key -> ETag) and the last event date in curated."""

    objects: dict[str, str] = field(default_factory=dict)
    max_event_date: date | None = None
    compacted_at: str | None = None

    def is_new(self, obj: ObjectInfo) -> bool:
        """A raw object not compacted yet, or overwritten with different content since."""
        return self.objects.get(obj.key) != obj.etag

    def to_json(self) -> bytes:
        body: dict[str, Any] = {
            "version": _VERSION,
            "max_event_date": None
            if self.max_event_date is None
            else self.max_event_date.isoformat(),
            "compacted_at": self.compacted_at,
            "objects": dict(sorted(self.objects.items())),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Manifest:
        doc = json.loads(body)
        end = doc.get("max_event_date")
        return cls(
            dict(doc.get("objects", {})),
            date.fromisoformat(end) if end else None,
            doc.get("compacted_at"),
        )


def load_manifest(store: LakeStore, bucket: str) -> Manifest:
    """The committed manifest, or an empty one on the first run."""
    body = store.get(bucket, MANIFEST_KEY)
    return Manifest() if body is None else Manifest.from_json(body)


def save_manifest(store: LakeStore, bucket: str, manifest: Manifest) -> None:
    """Write the manifest (one PUT)."""
    store.put(bucket, MANIFEST_KEY, manifest.to_json(), "application/json")


def commit_run(
    store: LakeStore,
    bucket: str,
    manifest: Manifest,
    listing: list[ObjectInfo],
    *,
    compacted_at: datetime,
    progress: Callable[[str, int, int], None],
) -> None:
    """Commit a run: its raw objects join the manifest, written last, in one PUT."""
    progress("commit", 0, 1)
    manifest.objects.update({o.key: o.etag for o in listing})
    manifest.compacted_at = compacted_at.isoformat()
    save_manifest(store, bucket, manifest)
    progress("commit", 1, 1)
