"""The local event source mapping against the emulator: one test per Lambda semantic."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.errors import TransientError
from pipeline.local.event_source import EventSourceMapping, LocalPoller
from pipeline.local.stack import LocalStack

FN = "IngestStreamFunction"


class Recorder:
    """A handler that records the data of every batch and fails as told."""

    def __init__(self, respond: Any = None) -> None:
        self.batches: list[list[str]] = []
        self.seqs: list[list[str]] = []
        self.respond = respond

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        self.batches.append([base64.b64decode(r["kinesis"]["data"]).decode() for r in records])
        self.seqs.append([r["kinesis"]["sequenceNumber"] for r in records])
        if self.respond is not None:
            return self.respond(records, len(self.batches))
        return None


@dataclasses.dataclass
class Env:
    """A fresh two-shard stream and failed-batches bucket on a stack shared by this module."""

    stack: LocalStack
    kinesis: Any
    s3: Any
    stream_name: str
    stream_arn: str
    bucket: str


@pytest.fixture(scope="module")
def shared_stack(emulator_url: str) -> LocalStack:
    # Provisioning the whole template costs seconds; a stream and a bucket per test isolate
    # the tests just as well.
    return LocalStack.create(emulator_url, stack_name=f"p{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def clients(shared_stack: LocalStack) -> tuple[Any, Any]:
    session = shared_stack.session()
    return session.client("kinesis"), session.client("s3")


@pytest.fixture
def env(shared_stack: LocalStack, clients: tuple[Any, Any]) -> Env:
    kinesis, s3 = clients
    name = f"s{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    bucket = f"{name}-failed"
    s3.create_bucket(Bucket=bucket)
    return Env(shared_stack, kinesis, s3, name, arn, bucket)


def put(env: Env, items: list[str], key: str = "SKU-1#LOC-1") -> list[str]:
    out = env.kinesis.put_records(
        StreamName=env.stream_name,
        Records=[{"Data": item.encode(), "PartitionKey": key} for item in items],
    )
    return [r["SequenceNumber"] for r in out["Records"]]


def poller(env: Env, handler: Any, *, options: Any = None, **overrides: Any) -> LocalPoller:
    """A poller of ``env``'s stream; ``overrides`` are mapping properties, ``options`` the
    poller's own keyword arguments."""
    base = EventSourceMapping.from_template(env.stack, FN)
    defaults: dict[str, Any] = {
        "stream_arn": env.stream_arn,
        "on_failure_bucket": env.bucket,
        "batch_size": 10,
        "batching_window_s": 0.0,
        "bisect_on_error": False,
        "maximum_retry_attempts": -1,
        "maximum_record_age_s": -1,
    }
    mapping = dataclasses.replace(base, **{**defaults, **overrides})
    kwargs: dict[str, Any] = {"kinesis_client": env.kinesis, "s3_client": env.s3}
    return LocalPoller(env.stack, FN, handler, mapping=mapping, **{**kwargs, **(options or {})})


def failed_objects(env: Env) -> dict[str, dict[str, Any]]:
    """Every object of the failed-batches bucket: key -> its JSON document."""
    listing = env.s3.list_objects_v2(Bucket=env.bucket).get("Contents", [])
    return {
        o["Key"]: json.loads(env.s3.get_object(Bucket=env.bucket, Key=o["Key"])["Body"].read())
        for o in listing
    }


def failure_messages(env: Env) -> list[dict[str, Any]]:
    return list(failed_objects(env).values())


def test_given_the_template_when_mapping_is_read_then_every_property_is_resolved(shared_stack):
    stack = shared_stack
    mapping = EventSourceMapping.from_template(stack, FN)

    assert mapping == EventSourceMapping(
        function_name=FN,
        stream_arn=f"arn:aws:kinesis:us-east-1:123456789012:stream/{stack.ref('SalesStream')}",
        batch_size=500,
        batching_window_s=1.0,
        starting_position="TRIM_HORIZON",
        report_batch_item_failures=True,
        bisect_on_error=True,
        maximum_retry_attempts=5,
        maximum_record_age_s=518400,  # IngestMaxRecordAgeSeconds' default: 6 days
        on_failure_arn=f"arn:aws:s3:::{stack.ref('FailedBatchesBucket')}",
        on_failure_bucket=stack.ref("FailedBatchesBucket"),
        parallelization_factor=1,
    )


def test_given_batch_size_3_when_7_records_then_batches_of_3_3_1(env):
    put(env, [f"r{i}" for i in range(7)])
    handler = Recorder()

    stats = poller(env, handler, batch_size=3).drain(timeout_s=30)

    assert handler.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert stats.caught_up
    assert stats.records_checkpointed == 7


def test_given_a_batching_window_when_batch_not_full_then_it_waits_for_more_records(env):
    handler = Recorder()
    p = poller(env, handler, batch_size=10, batching_window_s=3600)
    put(env, [f"a{i}" for i in range(4)])

    assert p.poll_once() == 0
    assert handler.batches == []

    put(env, [f"b{i}" for i in range(6)])
    assert p.poll_once() == 1
    assert handler.batches == [["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "b4", "b5"]]


def test_given_latest_when_started_then_only_later_records_are_delivered(env):
    put(env, ["old"])
    latest, trim = Recorder(), Recorder()
    p_latest = poller(env, latest, starting_position="LATEST")
    p_latest.start()
    p_trim = poller(env, trim, starting_position="TRIM_HORIZON")
    p_trim.start()
    put(env, ["new"])

    p_latest.drain(timeout_s=30)
    p_trim.drain(timeout_s=30)

    assert latest.batches == [["new"]]
    assert trim.batches == [["old", "new"]]


def test_given_item_failures_when_reported_then_retry_starts_at_the_lowest_failed_sequence(
    env,
):
    seqs = put(env, [f"r{i}" for i in range(6)])

    def fail_2_and_4_once(records: list[dict[str, Any]], call: int) -> dict[str, Any]:
        if call == 1:
            return {"batchItemFailures": [{"itemIdentifier": seqs[4]}, {"itemIdentifier": seqs[2]}]}
        return {"batchItemFailures": []}

    handler = Recorder(fail_2_and_4_once)
    p = poller(env, handler)
    stats = p.drain(timeout_s=30)

    assert handler.batches == [[f"r{i}" for i in range(6)], ["r2", "r3", "r4", "r5"]]
    assert stats.partial_failures == 1
    checkpoints = p.checkpoints.positions()
    assert checkpoints == {"shardId-000000000000": seqs[5]} or checkpoints == {
        "shardId-000000000001": seqs[5]
    }


def test_given_an_invalid_item_identifier_when_reported_then_whole_batch_is_retried(env):
    put(env, ["r0", "r1"])

    def bad_then_ok(records: list[dict[str, Any]], call: int) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": ""}]} if call == 1 else {}

    handler = Recorder(bad_then_ok)
    poller(env, handler).drain(timeout_s=30)

    assert handler.batches == [["r0", "r1"], ["r0", "r1"]]


def test_given_a_poison_record_when_bisect_on_error_then_it_is_isolated_and_written_to_s3(env):
    seqs = put(env, ["a", "b", "poison", "c"])

    def explode_on_poison(records: list[dict[str, Any]], call: int) -> None:
        if any(base64.b64decode(r["kinesis"]["data"]) == b"poison" for r in records):
            raise ValueError("poison")

    handler = Recorder(explode_on_poison)
    stats = poller(env, handler, bisect_on_error=True, maximum_retry_attempts=0).drain(timeout_s=30)

    assert handler.batches == [
        ["a", "b", "poison", "c"],
        ["a", "b"],
        ["poison", "c"],
        ["poison"],
        ["c"],
    ]
    assert stats.bisections == 2
    [message] = failure_messages(env)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["responseContext"]["functionError"] == "Unhandled"
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seqs[2],
        seqs[2],
        1,
    )


def test_given_a_failing_function_when_retries_are_exhausted_then_kinesis_batch_info_goes_to_s3(
    env,
):
    seqs = put(env, ["r0", "r1", "r2"])

    def always_fail(records: list[dict[str, Any]], call: int) -> None:
        raise RuntimeError("down")

    handler = Recorder(always_fail)
    p = poller(env, handler, maximum_retry_attempts=2)
    stats = p.drain(timeout_s=30)

    assert handler.batches == [["r0", "r1", "r2"]] * 3  # the first try and two retries
    assert stats.records_retries_exhausted == 3
    assert stats.caught_up
    [message] = failure_messages(env)
    info = message["KinesisBatchInfo"]
    shard = info["shardId"]
    assert message["requestContext"]["functionArn"] == (
        f"arn:aws:lambda:us-east-1:123456789012:function:{FN}"
    )
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["version"] == "1.0"
    assert info == {
        "shardId": shard,
        "startSequenceNumber": seqs[0],
        "endSequenceNumber": seqs[2],
        "approximateArrivalOfFirstRecord": info["approximateArrivalOfFirstRecord"],
        "approximateArrivalOfLastRecord": info["approximateArrivalOfLastRecord"],
        "batchSize": 3,
        "streamArn": p.mapping.stream_arn,
    }
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert p.checkpoints.get(shard) == seqs[2]


#: 2026-03-04 05:06:07.5 UTC: the wall clock of the tests that check the object's key.
FIXED_WALL_CLOCK = datetime(2026, 3, 4, 5, 6, 7, 500000, tzinfo=UTC).timestamp()


def test_given_a_discarded_batch_when_written_then_key_and_payload_are_lambdas_s3_document(env):
    seqs = put(env, ["r0", "r1"], key="SKU-9#LOC-2")

    def always_fail(records: list[dict[str, Any]], call: int) -> None:
        raise RuntimeError("down")

    p = poller(
        env, Recorder(always_fail), maximum_retry_attempts=0,
        options={"wall_clock": lambda: FIXED_WALL_CLOCK},
    )  # fmt: skip
    stats = p.drain(timeout_s=30)

    [(key, document)] = failed_objects(env).items()
    shard = document["KinesisBatchInfo"]["shardId"]
    assert re.fullmatch(
        rf"aws/lambda/{p.mapping.uuid}/{shard}/2026/03/04/2026-03-04T05\.06\.07-"
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
        key,
    )
    assert stats.failed_batches_written == 1
    assert document["timestamp"] == "2026-03-04T05:06:07.500Z"
    assert document["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    # The payload is the event the function was given, as an escaped JSON string.
    assert isinstance(document["payload"], str)
    event = json.loads(document["payload"])
    assert [
        (r["kinesis"]["partitionKey"], r["kinesis"]["sequenceNumber"],
         base64.b64decode(r["kinesis"]["data"]), r["eventID"], r["eventSourceARN"])
        for r in event["Records"]
    ] == [
        ("SKU-9#LOC-2", seqs[0], b"r0", f"{shard}:{seqs[0]}", env.stream_arn),
        ("SKU-9#LOC-2", seqs[1], b"r1", f"{shard}:{seqs[1]}", env.stream_arn),
    ]  # fmt: skip


def test_given_records_older_than_max_age_when_polled_then_discarded_to_s3_unseen(env):
    seqs = put(env, ["r0", "r1"])
    handler = Recorder()
    two_hours_later = {"wall_clock": lambda: time.time() + 7200}
    p = poller(env, handler, maximum_record_age_s=3600, options=two_hours_later)

    stats = p.drain(timeout_s=30)

    assert handler.batches == []
    assert stats.records_expired == 2
    [message] = failure_messages(env)
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == seqs[0]
    assert message["KinesisBatchInfo"]["batchSize"] == 2


def test_given_two_shards_and_a_failure_when_drained_then_each_shard_is_in_order_and_resumes(
    env, tmp_path
):
    keys = [f"SKU-{i}#LOC-1" for i in range(8)]
    for round_ in range(3):
        for key in keys:
            put(env, [f"{key}/{round_}"], key=key)

    def first_call_fails(records: list[dict[str, Any]], call: int) -> None:
        if call == 1:
            raise RuntimeError("transient")

    handler = Recorder(first_call_fails)
    checkpoint = tmp_path / "checkpoints.json"
    mapping_overrides = {"batch_size": 4}
    p = poller(env, handler, options={"checkpoint_path": checkpoint}, **mapping_overrides)
    p.drain(timeout_s=30)

    delivered = [item for batch in handler.batches[1:] for item in batch]
    assert sorted(delivered) == sorted(f"{k}/{r}" for k in keys for r in range(3))
    for key in keys:
        assert [d for d in delivered if d.startswith(f"{key}/")] == [f"{key}/{r}" for r in range(3)]
    assert len(p.checkpoints.positions()) == 2
    assert json.loads(checkpoint.read_text())["shards"] == p.checkpoints.positions()

    put(env, ["after"], key=keys[0])
    again = Recorder()
    p2 = poller(env, again, options={"checkpoint_path": checkpoint}, **mapping_overrides)
    p2.drain(timeout_s=30)
    assert again.batches == [["after"]]


@pytest.mark.parametrize("value", [12.5, [3.0, 4.5]])
def test_given_emf_lines_on_stdout_when_invoked_then_lags_are_collected_and_logged(
    env, tmp_path, value
):
    put(env, ["r0"])

    def emit(records: list[dict[str, Any]], call: int) -> None:
        print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "StreamLagMilliseconds": value}))
        print("plain log line")

    p = poller(env, Recorder(emit), options={"log_path": tmp_path / "consumer.log"})
    stats = p.drain(timeout_s=30)

    assert stats.lags_ms == (value if isinstance(value, list) else [value])
    assert "plain log line" in p.log_path.read_text()


def put_on_each_shard(env: Env, prefix: str) -> dict[str, list[str]]:
    """Records until every shard of the stream has one; shard id -> the data put there."""
    placed: dict[str, list[str]] = {}
    for i in range(64):
        data = f"{prefix}{i}"
        [out] = env.kinesis.put_records(
            StreamName=env.stream_name, Records=[{"Data": data.encode(), "PartitionKey": data}]
        )["Records"]
        placed.setdefault(out["ShardId"], []).append(data)
        if len(placed) == 2:
            return placed
    raise AssertionError("64 keys all hashed to one shard")


def test_given_two_shards_when_polled_then_their_invocations_overlap_and_capture_apart(
    env, tmp_path, capsys
):
    # Lambda runs one invocation per shard at a time: each waits here for the other, which
    # a poller serving shards one after the other would never let happen.
    placed = put_on_each_shard(env, "k")
    lag_of = {placed["shardId-000000000000"][0]: 1.0, placed["shardId-000000000001"][0]: 2.0}
    both_in = threading.Barrier(2, timeout=10)
    bound = logging.getLogger(f"poller-test-{uuid.uuid4().hex}")
    bound.setLevel(logging.INFO)
    bound_handler = logging.StreamHandler(sys.stdout)  # bound as Powertools binds it

    def meet(records: list[dict[str, Any]], call: int) -> None:
        data = base64.b64decode(records[0]["kinesis"]["data"]).decode()
        emf = {"_aws": {"CloudWatchMetrics": []}, "StreamLagMilliseconds": lag_of[data]}
        print(json.dumps(emf))
        both_in.wait()
        bound.info("%s done", data)

    stdout = sys.stdout
    p = poller(env, Recorder(meet), options={"log_path": tmp_path / "consumer.log"})
    bound.addHandler(bound_handler)
    try:
        stats = p.drain(timeout_s=30)
    finally:
        bound.removeHandler(bound_handler)

    assert stats.function_errors == 0
    assert sorted(stats.lags_ms) == [1.0, 2.0]
    log = p.log_path.read_text()
    for data, lag in lag_of.items():
        # Each invocation's lines stay together: its capture is its own thread's.
        assert f'"StreamLagMilliseconds": {lag}}}\n{data} done\n' in log
    assert sys.stdout is stdout
    assert capsys.readouterr().out == ""


def test_given_follow_mode_when_records_arrive_then_every_shard_delivers_until_stopped(env):
    handler = Recorder()
    p = poller(env, handler, starting_position="TRIM_HORIZON")
    stop = threading.Event()
    follower = threading.Thread(target=p.run, args=(stop,), daemon=True)
    follower.start()
    placed = put_on_each_shard(env, "f")
    put_data = [data for shard in placed.values() for data in shard]
    deadline = time.monotonic() + 30
    while p.stats.records_checkpointed < len(put_data) and time.monotonic() < deadline:
        time.sleep(0.05)

    stop.set()
    follower.join(timeout=10)

    assert not follower.is_alive()
    assert sorted(d for batch in handler.batches for d in batch) == sorted(put_data)
    assert set(p.checkpoints.positions()) == set(placed)


class FailingReads:
    """A Kinesis client whose GetRecords fails on one shard."""

    def __init__(self, kinesis: Any, shard_id: str) -> None:
        self._kinesis, self._shard_id = kinesis, shard_id
        self._iterators: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kinesis, name)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        out = self._kinesis.get_shard_iterator(**kwargs)
        if kwargs["ShardId"] == self._shard_id:
            self._iterators.add(out["ShardIterator"])
        return out

    def get_records(self, **kwargs: Any) -> Any:
        if kwargs["ShardIterator"] in self._iterators:
            error = {"Error": {"Code": "InternalFailure", "Message": "injected"}}
            raise ClientError(error, "GetRecords")  # type: ignore[arg-type]
        return self._kinesis.get_records(**kwargs)


def test_given_follow_mode_when_one_shard_fails_then_run_stops_and_raises(env):
    failing = FailingReads(env.kinesis, "shardId-000000000001")
    p = poller(env, Recorder(), options={"kinesis_client": failing})
    stop = threading.Event()  # never set: the failure alone ends the run

    with pytest.raises(TransientError, match="shardId-000000000001"):
        p.run(stop)
