"""The producer against the emulator's stream: everything lands, per key in order."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from pipeline.contracts import validate_event
from pipeline.produce import Producer, partition_key
from pipeline.synth import SynthConfig, live_events


def read_back(kinesis: Any, stream: str) -> tuple[int, list[dict[str, Any]]]:
    """(Kinesis records, user events) of every shard, in shard order."""
    records, events = 0, []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            out = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += len(out["Records"])
            for user in iter_deaggregate_records(out["Records"], data_format="Boto3"):
                data = user["kinesis"]["data"]
                if not data.startswith(b"{"):
                    data = __import__("base64").b64decode(data)
                events.append(json.loads(data))
            if not out["Records"]:
                break
            iterator = out["NextShardIterator"]
    return records, events


@pytest.mark.parametrize("aggregate", [False, True])
def test_given_live_events_when_produced_then_all_read_back_in_key_order(stack, aggregate):
    kinesis = stack.session().client("kinesis")
    stream = stack.ref("SalesStream")
    sent = live_events(SynthConfig(seed=3), datetime.now(UTC), 1500, spacing_s=0.001)

    report = Producer(kinesis, stream, aggregate=aggregate).put(sent)

    records, received = read_back(kinesis, stream)
    assert report.events == 1500
    assert records == report.kinesis_records
    if aggregate:
        assert records <= 1500 / 5
    else:
        assert records == 1500
    for event in received:
        validate_event(event)
    by_key_sent: dict[str, list[str]] = defaultdict(list)
    by_key_received: dict[str, list[str]] = defaultdict(list)
    for e in sent:
        by_key_sent[partition_key(e)].append(e["event_id"])
    for e in received:
        by_key_received[partition_key(e)].append(e["event_id"])
    assert by_key_received == by_key_sent
