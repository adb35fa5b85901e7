"""moto's S3 event notifications given the fields S3 sends and moto leaves out.

moto (through 5.2.6) delivers a bucket's ``QueueConfigurations`` events to SQS in server
mode (``moto.s3.notifications.send_event``), with the size and the ETag, but without
``sequencer``: the hex string S3 puts in every PUT and DELETE event so that a consumer can
order two events of the same key (an object overwritten by a retried batch), which the
compaction job relies on (:mod:`pipeline.compaction.notifications`). It also leaves out the
object's ``versionId`` and the request fields of S3's message, and URL-encodes the key's
``/`` as ``%2F``, which S3 leaves as it is (``a b/c=d.json`` is ``a+b/c%3Dd.json``). This
patch adds the fields and encodes the key as S3 does, and nothing else: which events are
sent, and when, stays moto's. The
emulator (``pipeline.local.server``) applies it; ``tests/functional/local/
test_s3_notifications.py`` checks the messages through the server.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Final
from urllib.parse import quote_plus

#: S3's sequencers are hex strings of this many digits (for example ``0055AED6DCD90281E5``).
SEQUENCER_DIGITS: Final = 18


class _Sequencer:
    """Strictly increasing hex sequencers, across every bucket of the process (S3 only
    promises an order per key; one order for all is simpler and still right)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:0{SEQUENCER_DIGITS}X}"


_SEQUENCER = _Sequencer()


def apply() -> None:
    """Patch moto's S3 notification message in this process (idempotent)."""
    from moto.s3 import notifications

    if getattr(notifications._get_s3_event, "adds_sequencer", False):
        return
    get_s3_event = notifications._get_s3_event

    def s3_event(
        event_name: str, bucket: Any, key: Any, notification_id: str
    ) -> dict[str, list[dict[str, Any]]]:
        event = get_s3_event(event_name, bucket, key, notification_id)
        request_id = uuid.uuid4().hex[:16].upper()
        for record in event["Records"]:
            record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements",
                {"x-amz-request-id": request_id, "x-amz-id-2": request_id},
            )
            s3 = record["s3"]
            s3["bucket"].setdefault("ownerIdentity", {"principalId": "LOCAL"})
            obj = s3["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj.setdefault("versionId", version)
            obj.setdefault("sequencer", _SEQUENCER.next())
        return event

    s3_event.adds_sequencer = True  # type: ignore[attr-defined]
    notifications._get_s3_event = s3_event
