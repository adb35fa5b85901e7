"""A batch the ingest mapping gives up on comes back through replay, into curated once;
and ``fmcg replay-failed`` on the stack's own bucket and stream.

On the emulator, through the real stages: producer -> Kinesis -> the local event source
mapping with the real ingest handler, whose raw writes fail (injected S3 5xx on its own
client) on every try -> Lambda's document in the failed-batches bucket; the fault clears;
replay -> ingest -> compaction -> curated.
"""

from __future__ import annotations

import json
import time
import types
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import botocore.endpoint
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.compaction import run_compaction
from pipeline.compaction.lateness import Lateness
from pipeline.faults import FaultPlan, FaultRule
from pipeline.local.event_source import EventSourceMapping, LocalPoller
from pipeline.local.event_source.payloads import (
    RETRY_ATTEMPTS_EXHAUSTED,
    s3_failure_document,
    s3_failure_key,
)
from pipeline.local.stack import STATE_DIR_VARIABLE
from pipeline.produce import Producer
from pipeline.produce.failed_batches import (
    REPLAYED_TAG,
    FailedBatchBucket,
    replay_failed_batches,
)
from tests.support.compaction_lake import table_rows
from tests.support.reliability_world import FUNCTION, World

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.local.stack import LocalStack

EVENTS = [
    {
        "event_id": f"ev-{i}",
        "event_type": "sale",
        "sku_id": f"SKU-{i % 3}",
        "location_id": "LOC-1",
        "quantity": 1 + i,
        "event_time": f"2026-01-0{1 + i % 2}T10:00:00+00:00",
    }
    for i in range(8)
]
RAW_WRITES_FAIL = FaultPlan((FaultRule("s3.PutObject", "server_error", rate=1.0),))


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retry sleeps at a hundredth (the handler's S3 client retries each 5xx)."""
    shim = types.SimpleNamespace(sleep=lambda s: time.sleep(s / 100), time=time.time)
    monkeypatch.setattr(botocore.endpoint, "time", shim)


def curated_event_ids(world: World, lake: Any) -> list[str]:
    return sorted(r["event_id"] for r in table_rows(world.admin, lake.database, "sales"))


def compact(world: World, lake: Any) -> None:
    run_compaction(
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=world.admin,
        # The events are fixed in January and arrive at the wall clock's time: a scheduled
        # run would hold them aside as too late (pipeline/compaction/lateness.py).
        lateness=Lateness(horizon_days=36_500),
    )


def test_given_raw_writes_failing_on_every_try_when_the_fault_clears_and_the_batch_is_replayed_then_curated_holds_each_event_once(  # noqa: E501
    stack: LocalStack, fast_retries: None
) -> None:
    world = World(stack)
    res = world.provision(shards=1, forecast=False)
    failed_bucket = f"{res.stream}-failed"
    world.s3.create_bucket(Bucket=failed_bucket)
    mapping = replace(world.mapping_for(res, batch_size=100), on_failure_bucket=failed_bucket)
    Producer(world.kinesis_admin, res.stream).put(EVENTS)
    world.handler_faults.reset(RAW_WRITES_FAIL)
    poller = LocalPoller(
        stack,
        FUNCTION,
        world.handler,
        kinesis_client=world.poll_kinesis,
        s3_client=world.s3,
        mapping=mapping,
    )

    # WHEN the mapping runs out of tries: the first and MaximumRetryAttempts (5) more.
    stats = poller.drain(timeout_s=120)

    assert mapping.maximum_retry_attempts == 5
    assert (stats.invocations, stats.records_retries_exhausted) == (6, len(EVENTS))
    assert stats.failed_batches_written == 1
    assert world.s3.list_objects_v2(Bucket=res.lake.raw).get("KeyCount", 0) == 0
    [obj] = world.s3.list_objects_v2(Bucket=failed_bucket)["Contents"]
    assert obj["Key"].startswith(f"aws/lambda/{mapping.uuid}/shardId-000000000000/")
    document = json.loads(world.s3.get_object(Bucket=failed_bucket, Key=obj["Key"])["Body"].read())
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 6
    assert document["KinesisBatchInfo"]["batchSize"] == len(EVENTS)
    assert len(json.loads(document["payload"])["Records"]) == len(EVENTS)

    # THEN, the fault cleared, a replay brings every record through ingest into curated.
    world.handler_faults.reset(FaultPlan())
    bucket = FailedBatchBucket(world.s3, failed_bucket)
    producer = Producer(world.kinesis_admin, res.stream)
    report = replay_failed_batches(bucket, producer)
    assert (report.replayed, report.records) == ([obj["Key"]], len(EVENTS))
    poller.drain(timeout_s=60)
    compact(world, res.lake)
    expected = sorted(e["event_id"] for e in EVENTS)
    assert curated_event_ids(world, res.lake) == expected
    assert REPLAYED_TAG in bucket.tags(obj["Key"])

    # A second replay puts nothing; even a second put (a crash before the tag) is harmless.
    again = replay_failed_batches(bucket, producer)
    assert (again.replayed, again.already_replayed) == ([], [obj["Key"]])
    producer.put_records(bucket.read(obj["Key"]).records)
    poller.drain(timeout_s=60)
    compact(world, res.lake)
    assert curated_event_ids(world, res.lake) == expected


def test_given_a_failed_batch_of_the_stack_when_fmcg_replay_failed_runs_twice_then_its_records_are_on_the_stream_once(  # noqa: E501
    stack: LocalStack, tmp_path: Path
) -> None:
    mapping = EventSourceMapping.from_template(stack, FUNCTION)
    shard = "shardId-000000000000"
    records = [
        {
            "PartitionKey": f"SKU-{i}#LOC-1",
            "Data": f'{{"n":{i}}}'.encode(),
            "SequenceNumber": str(10 + i),
            "ApproximateArrivalTimestamp": 1_767_225_600.0 + i,
        }
        for i in range(3)
    ]
    document = s3_failure_document(
        mapping,
        shard,
        records,
        condition=RETRY_ATTEMPTS_EXHAUSTED,
        attempts=6,
        function_error=None,
        now_epoch=1_767_225_700.0,
    )
    key = s3_failure_key(mapping, shard, 1_767_225_700.0)
    s3 = stack.session().client("s3")
    s3.put_object(Bucket=stack.ref("FailedBatchesBucket"), Key=key, Body=json.dumps(document))
    stack.save(tmp_path / "local.json")

    def fmcg(*args: str) -> tuple[int, str]:
        env = {STATE_DIR_VARIABLE: str(tmp_path)}
        result = CliRunner().invoke(app, list(args), env=env, prog_name="fmcg")
        return result.exit_code, result.output

    first = fmcg("replay-failed")
    second = fmcg("replay-failed", key)

    stream = stack.ref("SalesStream")
    assert first == (
        0,
        f"replayed {key}\n3 records of 1 failed batches put back on {stream}; "
        "0 already replayed, skipped\n",
    )
    assert second == (
        0,
        f"0 records of 0 failed batches put back on {stream}; 1 already replayed, skipped\n",
    )
    kinesis = stack.session().client("kinesis")
    on_stream = []
    for summary in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=summary["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        on_stream += [
            (r["PartitionKey"], r["Data"])
            for r in kinesis.get_records(ShardIterator=iterator)["Records"]
        ]
    assert sorted(on_stream) == sorted((r["PartitionKey"], r["Data"]) for r in records)
