"""How a run finds the raw objects it compacts: from the raw zone's event queue, or a listing.

**The queue** (the scheduled job; ``--raw_queue_url``). The raw bucket sends each
``ObjectCreated`` event under ``sales/`` to an SQS queue (infra/template.yaml,
``RawEventsQueue``), and a run receives up to ``max_objects`` of them, in batches of ten
(the first call waits a second for messages, like SQS long polling; later calls do not
wait, and the first empty answer ends the drain). Finding new objects costs what is new:
no listing, and no state that grows with the objects compacted before (the manifest keeps
only the last event date, :mod:`pipeline.compaction.state`). Keys are de-duplicated (the
latest event of a key wins, by S3's sequencer) and returned oldest key first, in the same
:class:`~pipeline.compaction.state.Pending` the listing returns. The messages are deleted
by :func:`settle` only after the run has committed (``committed`` in
:mod:`pipeline.compaction.job` calls it); a run that fails hands them back at once
(:func:`released_on_failure`), and a killed one leaves them to reappear after the queue's
visibility timeout (above the job's timeout), so the next run reads the same objects again,
which de-duplication by ``event_id`` makes harmless.

What the queue covers, and what it does not:

- a retried batch overwriting its key (a new ETag) is a new event: read again, harmless;
- a batch that lands under an old arrival day after an outage is still an event: whatever
  its key's date, it is found when it is written;
- an event for a key deleted since is skipped when its GET finds nothing;
- a message that names no raw object (S3's ``s3:TestEvent``, another bucket's event, an
  unknown body) is counted as ignored and deleted with the others, never blocking a run;
- an object written while no notification was configured, or whose message expired (the
  queue keeps messages 14 days; ``RawEventsQueueAgeAlarm`` fires long before), has no
  event. For those, run the **sweep**: the job without a queue
  (``fmcg compact --sweep``, ``--raw_discovery listing``), which lists the arrival days
  after the manifest's watermark (:func:`pipeline.compaction.state.find_new`) and compacts
  what it finds, bounded by ``max_objects`` per run; objects compacted before are merged
  again as duplicates, which changes nothing. Run it once after enabling the queue on a
  lake that had none, and after an outage of the queue or of the job longer than the
  messages' retention.
"""

from __future__ import annotations

from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Final

from pipeline.compaction.notifications import latest_by_key, raw_objects_named
from pipeline.compaction.queue import BATCH, RawQueue
from pipeline.compaction.state import MAX_OBJECTS, Manifest, Pending, find_new
from pipeline.compaction.store import ObjectInfo
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import boto3

    from pipeline.compaction.notifications import Notified
    from pipeline.compaction.store import LakeStore

#: Seconds the first receive waits for a message (SQS long polling asks every server, so
#: a nearly empty queue still answers); later receives do not wait.
FIRST_WAIT_SECONDS: Final = 1

__all__ = ["RawQueue", "discover", "drain", "raw_queue", "released_on_failure", "settle"]


def raw_queue(
    session: boto3.session.Session, url: str | None, sqs_client: Any = None
) -> RawQueue | None:
    """The raw zone's event queue at ``url`` (``None`` without one: the run lists), through
    ``sqs_client`` or, by default, one built from ``session``."""
    if not url:
        return None
    return RawQueue(sqs_client if sqs_client is not None else session.client("sqs"), url)


def discover(
    store: LakeStore,
    raw_bucket: str,
    manifest: Manifest,
    *,
    queue: RawQueue | None = None,
    max_objects: int = MAX_OBJECTS,
) -> Pending:
    """The raw objects this run compacts, oldest key first, at most ``max_objects``: from
    ``queue`` when given (:func:`drain`), else by listing the open window (the sweep,
    :func:`pipeline.compaction.state.find_new`). Both engines call this."""
    if queue is None:
        return find_new(store, raw_bucket, manifest, max_objects=max_objects)
    return drain(queue, raw_bucket, max_objects=max_objects)


def drain(queue: RawQueue, raw_bucket: str, *, max_objects: int = MAX_OBJECTS) -> Pending:
    """Receive up to ``max_objects`` notifications; the raw objects they name (the latest
    event of each key), oldest key first. Nothing is deleted here: see :func:`settle`."""
    named: list[Notified] = []
    receipts: list[str] = []
    ignored = 0
    wait = FIRST_WAIT_SECONDS
    try:
        while len(receipts) < max_objects:
            messages = queue.receive(min(BATCH, max_objects - len(receipts)), wait_seconds=wait)
            if not messages:
                break
            wait = 0
            for message in messages:
                receipts.append(message.receipt)
                objects = raw_objects_named(message.body, raw_bucket)
                if not objects:
                    ignored += 1
                named += objects
        # Only a run that stopped at its bound asks what is left (one more call).
        left = queue.waiting() if len(receipts) >= max_objects else 0
    except BaseException:
        _release(queue, receipts)
        raise
    latest = latest_by_key(named)
    found = [ObjectInfo(n.key, n.etag, n.size) for _, n in sorted(latest.items())]
    return Pending(found, left=left, receipts=tuple(receipts), ignored=ignored, from_queue=True)


def settle(queue: RawQueue | None, pending: Pending) -> int:
    """Delete the run's messages, once its commit is durable; how many SQS refused (their
    objects are read again by a later run, harmlessly)."""
    if queue is None or not pending.receipts:
        return 0
    return queue.delete(pending.receipts)


@contextmanager
def released_on_failure(queue: RawQueue | None, pending: Pending) -> Iterator[None]:
    """Hand the run's messages back to the queue if the block raises, so the next run sees
    them at once rather than after the visibility timeout (best effort: a release that
    fails leaves them to the timeout)."""
    try:
        yield
    except BaseException:
        if queue is not None:
            _release(queue, pending.receipts)
        raise


def _release(queue: RawQueue, receipts: Sequence[str]) -> None:
    if receipts:
        with suppress(PipelineError):
            queue.release(receipts)
