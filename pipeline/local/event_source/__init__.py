"""The local Kinesis event source mapping: Lambda's polling and delivery semantics, in-process.

The mapping's properties come from the function's ``Events`` entry of ``Type: Kinesis`` in
the template (:mod:`.mapping`), and the poller honours them as Lambda does:

- ``StartingPosition`` (``TRIM_HORIZON`` / ``LATEST``) for shards without a checkpoint;
- ``BatchSize`` and ``MaximumBatchingWindowInSeconds``: a batch goes when it is full, when
  the window since its first record was read has passed, or (window 0) at once; a batch
  also stays under Lambda's 6 MB synchronous payload;
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: records before the lowest failed
  sequence number are checkpointed and delivery resumes from it; an invalid identifier
  fails the whole batch (:mod:`.invocation`);
- a handler exception fails the whole batch; ``BisectBatchOnFunctionError`` then splits it
  in two and retries the halves in order (splitting does not consume the retry quota);
- ``MaximumRetryAttempts`` (-1 = until the records expire) and ``MaximumRecordAgeInSeconds``
  (-1 = never): records that exhaust them are skipped and Lambda's invocation record
  (``KinesisBatchInfo`` and, as for any S3 destination, the whole event under ``payload``;
  :mod:`.payloads`) goes to ``DestinationConfig.OnFailure``, which must be a bucket of the
  stack; bisection and attempts are one shard's state (:mod:`.shard_state`);
- concurrency and per-shard ordering: as Lambda runs one invocation per shard, shards are
  served concurrently, one thread each, with one batch in flight per shard (:mod:`.poller`);
  checkpoints in memory and optionally in a JSON file, so a restarted poller resumes after
  the last checkpoint (:mod:`.checkpoints`).

``ParallelizationFactor`` above 1 is not emulated: it is read and reported, and shards are
processed with factor 1, which keeps per-key order trivially (Lambda keeps it too, by
hashing keys to concurrent batches; the observable semantics are the same, only slower).

Each invocation's stdout (EMF metric lines, Powertools JSON logs) is captured per thread,
appended to an optional log file, and ``StreamLagMilliseconds`` values found in EMF lines
are collected into :attr:`PollStats.lags_ms` (:mod:`.output`). Callers that measure the
poller pass a :class:`PollObserver` (:mod:`.observer`).
"""

from pipeline.local.event_source.checkpoints import CheckpointStore
from pipeline.local.event_source.invocation import (
    Failed,
    FunctionError,
    Invocation,
    InvocationResult,
    PartiallyFailed,
    Succeeded,
)
from pipeline.local.event_source.mapping import EventSourceMapping
from pipeline.local.event_source.observer import NULL_OBSERVER, PollObserver
from pipeline.local.event_source.poller import LocalPoller, PollStats

__all__ = [
    "NULL_OBSERVER",
    "CheckpointStore",
    "EventSourceMapping",
    "Failed",
    "FunctionError",
    "Invocation",
    "InvocationResult",
    "LocalPoller",
    "PartiallyFailed",
    "PollObserver",
    "PollStats",
    "Succeeded",
]
