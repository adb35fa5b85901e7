"""Where each shard's delivery stands: the last checkpointed sequence number, kept durable.

A restarted poller resumes after these (Lambda keeps them for the mapping). The file is
``{"stream_arn": ..., "shards": {shard id: sequence number}}``, replaced atomically on
every checkpoint; one written for another stream is ignored, so a recreated stream of the
same name starts afresh.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class CheckpointStore:
    """The checkpoints of one stream's shards, in memory and, with a ``path``, in a file.

    Thread-safe: the shards checkpoint concurrently, each its own entry.
    """

    def __init__(self, stream_arn: str, path: Path | None = None) -> None:
        self.stream_arn = stream_arn
        self.path = path
        self._lock = threading.Lock()
        self._positions = self._load()

    def get(self, shard_id: str) -> str | None:
        """The last checkpointed sequence number of ``shard_id``, None if it has none."""
        with self._lock:
            return self._positions.get(shard_id)

    def positions(self) -> dict[str, str]:
        """Shard id -> last checkpointed sequence number, for every checkpointed shard."""
        with self._lock:
            return dict(self._positions)

    def save(self, shard_id: str, sequence_number: str) -> None:
        """Checkpoint ``shard_id`` at ``sequence_number`` (and write the file, if any)."""
        with self._lock:
            self._positions[shard_id] = sequence_number
            self._write()

    def _load(self) -> dict[str, str]:
        if self.path is None or not self.path.is_file():
            return {}
        body = json.loads(self.path.read_text())
        if body.get("stream_arn") != self.stream_arn:
            return {}
        shards: dict[str, str] = body.get("shards", {})
        return dict(shards)

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"stream_arn": self.stream_arn, "shards": self._positions}
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True))
        tmp.replace(self.path)
