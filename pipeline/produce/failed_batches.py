"""Failed ingest batches: read what Lambda wrote to the on-failure bucket, put it back.

When the ingest mapping gives a batch up (retries or record age exhausted) Lambda writes one
object to the mapping's S3 on-failure destination, under
``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``: the
invocation record (``requestContext``, ``responseContext``, ``version``, ``timestamp``,
``KinesisBatchInfo``) and, under ``payload``, the whole event the function was given, as a
JSON string, each record's data base64-encoded. So the records outlive the stream's
retention, and replaying one is putting its records back on the stream, data and partition
key unchanged, in their order.

Replay is safe to repeat. An object is tagged ``fmcg-replayed`` once all its records are
back on the stream, and a tagged object is skipped. A crash between the put and the tag puts
the batch again on the next run, which is harmless: the ingest core writes a batch under a
key that follows from its shard and sequence numbers, and compaction de-duplicates by
``event_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import MISSING_OBJECT_CODES, error_code, translate, translated
from pipeline.errors import InvalidInputError, NotFoundError
from pipeline.ingest.decode import is_aggregate

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

    from pipeline.produce.producer import Producer

#: Where Lambda writes in an S3 on-failure destination.
FAILED_BATCH_PREFIX: Final = "aws/lambda/"
#: The tag of an object whose records are back on the stream (its value: when, in UTC).
REPLAYED_TAG: Final = "fmcg-replayed"


@dataclass(frozen=True)
class FailedBatch:
    """One failed-batch document: where its records came from, and the records in order."""

    key: str
    stream_arn: str
    shard_id: str
    start_sequence_number: str
    condition: str
    #: ``(partition key, data)`` of each record, in the order the shard held them.
    records: tuple[tuple[str, bytes], ...]

    @property
    def stream_name(self) -> str:
        return self.stream_arn.rsplit("/", 1)[-1]

    @property
    def order(self) -> tuple[str, str, int]:
        """Replay order: per stream and shard, by the first record's sequence number."""
        return (self.stream_arn, self.shard_id, int(self.start_sequence_number))


def parse_failed_batch(key: str, body: bytes, *, bucket: str | None = None) -> FailedBatch:
    """Read one document; anything else raises :class:`InvalidInputError` naming the object."""
    where = f"s3://{bucket}/{key}" if bucket else key
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _not_a_document(where, f"not JSON ({e})") from e
    if not isinstance(document, dict):
        raise _not_a_document(where, "not a JSON object")
    info = document.get("KinesisBatchInfo")
    if not isinstance(info, dict) or not all(
        isinstance(info.get(name), str) for name in ("streamArn", "shardId", "startSequenceNumber")
    ):
        raise _not_a_document(where, "no KinesisBatchInfo with streamArn, shardId and sequences")
    if "payload" not in document:
        raise _not_a_document(where, "no payload (an SQS or SNS record holds none)")
    records = _records(where, document["payload"])
    if records and info.get("batchSize") != len(records):
        raise _not_a_document(
            where, f"payload holds {len(records)} records, batchSize says {info.get('batchSize')}"
        )
    condition = document.get("requestContext", {}).get("condition", "")
    return FailedBatch(
        key=key,
        stream_arn=info["streamArn"],
        shard_id=info["shardId"],
        start_sequence_number=info["startSequenceNumber"],
        condition=str(condition),
        records=tuple(records),
    )


def _records(where: str, payload: Any) -> list[tuple[str, bytes]]:
    try:
        # The documented payload is the event as an escaped JSON string.
        event = json.loads(payload) if isinstance(payload, str) else payload
        entries = event["Records"]
        records = [
            (r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"], validate=True))
            for r in entries
        ]
    except (ValueError, TypeError, KeyError, binascii.Error) as e:
        why = f"payload is not a Kinesis event ({type(e).__name__}: {e})"
        raise _not_a_document(where, why) from e
    if not records or not all(isinstance(k, str) and k for k, _ in records):
        raise _not_a_document(where, "payload holds no records with partition keys")
    return records


def _not_a_document(where: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"{where} is not a failed-batch document: {why}")


class FailedBatchBucket:
    """The on-failure bucket over an injected S3 client: list, read and tag documents."""

    def __init__(self, s3_client: S3Client, bucket: str) -> None:
        self.bucket = bucket
        self._s3 = s3_client

    def keys(self) -> list[str]:
        """Every document's key, in key order.

        Grows with the failed batches kept; the template's lifecycle rule expires them
        after 90 days, which bounds it.
        """
        keys: list[str] = []
        with translated(f"list s3://{self.bucket}/{FAILED_BATCH_PREFIX}", service="s3"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=FAILED_BATCH_PREFIX
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def read(self, key: str) -> FailedBatch:
        where = f"s3://{self.bucket}/{key}"
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as e:
            if error_code(e) in MISSING_OBJECT_CODES:
                raise NotFoundError(f"no failed-batch object {where}") from e
            raise translate(e, f"read {where}", service="s3", resource=where) from e
        return parse_failed_batch(key, body, bucket=self.bucket)

    def tags(self, key: str) -> dict[str, str]:
        where = f"s3://{self.bucket}/{key}"
        with translated(f"read the tags of {where}", service="s3", resource=where):
            tag_set = self._s3.get_object_tagging(Bucket=self.bucket, Key=key)["TagSet"]
        return {t["Key"]: t["Value"] for t in tag_set}

    def tag(self, key: str, tags: dict[str, str]) -> None:
        """Set the object's tags to ``tags`` (S3 replaces the whole set)."""
        where = f"s3://{self.bucket}/{key}"
        with translated(f"tag {where}", service="s3", resource=where):
            self._s3.put_object_tagging(
                Bucket=self.bucket,
                Key=key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
            )


@dataclass
class ReplayReport:
    """What one replay did: the objects replayed (in order), skipped, and records put."""

    replayed: list[str] = field(default_factory=list)
    already_replayed: list[str] = field(default_factory=list)
    records: int = 0


def replay_failed_batches(
    bucket: FailedBatchBucket,
    producer: Producer,
    *,
    key: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReplayReport:
    """Put the records of every failed batch not yet replayed (or of ``key``) back on the
    producer's stream, then tag each object replayed.

    Every pending document is read and checked before anything is put (a document of
    another stream, or not a document at all, raises :class:`InvalidInputError`), so they
    can go in order: per shard by sequence number, one batch after the other, which keeps
    each key's order across batches too. They are held in memory meanwhile: failed batches
    are few, and expire from the bucket after 90 days.
    """
    report = ReplayReport()
    pending: list[FailedBatch] = []
    for candidate in [key] if key is not None else bucket.keys():
        batch = bucket.read(candidate)
        if REPLAYED_TAG in bucket.tags(candidate):
            report.already_replayed.append(candidate)
            continue
        if batch.stream_name != producer.stream_name:
            raise InvalidInputError(
                f"s3://{bucket.bucket}/{candidate} is a batch of stream {batch.stream_name}, "
                f"not of {producer.stream_name}"
            )
        pending.append(batch)
    for batch in sorted(pending, key=lambda b: b.order):
        # A KPL aggregate holds the records of many keys: order by shard, as it was put.
        by_shard = any(is_aggregate(data) for _, data in batch.records)
        producer.put_records(batch.records, by_shard=by_shard)
        tags = bucket.tags(batch.key)
        tags[REPLAYED_TAG] = now().astimezone(UTC).isoformat(timespec="seconds")
        bucket.tag(batch.key, tags)
        report.replayed.append(batch.key)
        report.records += len(batch.records)
    return report
