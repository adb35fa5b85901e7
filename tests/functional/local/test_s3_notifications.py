"""The raw bucket's event notifications through the emulator: provisioned from the template,
delivered by moto to the stack's queue in S3's shape (``pipeline.local.s3_notification_patches``
adds the sequencer), and named to the compaction job as a job argument."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import pytest

from pipeline.local.glue_runtime import GlueJobDefinition

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


@pytest.fixture
def events(stack: LocalStack) -> tuple[Any, Any, str, str]:
    """The stack's S3 and SQS clients, its raw bucket and queue URL, the queue drained of
    the test event S3 sent when provisioning set the configuration."""
    session = stack.session()
    sqs, url = session.client("sqs"), stack.ref("RawEventsQueue")
    (test_event,) = _drain(sqs, url)
    assert (test_event["Event"], test_event["Bucket"]) == ("s3:TestEvent", stack.ref("RawBucket"))
    return session.client("s3"), sqs, stack.ref("RawBucket"), url


def test_given_the_stack_when_provisioned_then_the_raw_bucket_notifies_its_queue(
    stack: LocalStack,
) -> None:
    session = stack.session()
    config = session.client("s3").get_bucket_notification_configuration(
        Bucket=stack.ref("RawBucket")
    )
    attributes = session.client("sqs").get_queue_attributes(
        QueueUrl=stack.ref("RawEventsQueue"), AttributeNames=["All"]
    )["Attributes"]

    (queue,) = config["QueueConfigurations"]
    assert queue["QueueArn"] == attributes["QueueArn"]
    assert queue["Events"] == ["s3:ObjectCreated:*"]
    rules = {r["Name"].lower(): r["Value"] for r in queue["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "sales/", "suffix": ".json"}
    assert (attributes["MessageRetentionPeriod"], attributes["VisibilityTimeout"]) == (
        "1209600",
        "5400",
    )
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_given_a_raw_object_put_when_the_queue_is_read_then_the_event_has_s3s_shape(
    events: tuple[Any, Any, str, str],
) -> None:
    s3, sqs, raw, url = events
    key = "sales/2024/03/01/shardId-000000000000-1 2+3-4.json"
    put = s3.put_object(Bucket=raw, Key=key, Body=b'{"a":1}\n')

    (body,) = _drain(sqs, url)

    (record,) = body["Records"]
    assert (record["eventSource"], record["eventName"]) == ("aws:s3", "ObjectCreated:Put")
    assert record["s3"]["bucket"]["name"] == raw
    obj = record["s3"]["object"]
    assert obj["key"] == "sales/2024/03/01/shardId-000000000000-1+2%2B3-4.json"
    assert unquote_plus(obj["key"]) == key
    assert (obj["eTag"], obj["size"]) == (put["ETag"].strip('"'), 8)
    assert len(obj["sequencer"]) == 18
    int(obj["sequencer"], 16)


def test_given_a_key_overwritten_when_notified_then_the_later_event_has_the_greater_sequencer(
    events: tuple[Any, Any, str, str],
) -> None:
    s3, sqs, raw, url = events
    key = "sales/2024/03/01/shardId-000000000000-1-2.json"
    s3.put_object(Bucket=raw, Key=key, Body=b"first\n")
    s3.put_object(Bucket=raw, Key=key, Body=b"second, retried\n")

    first, second = (b["Records"][0]["s3"]["object"] for b in _drain(sqs, url))

    assert (first["size"], second["size"]) == (6, 16)
    assert second["sequencer"] > first["sequencer"]


def test_given_objects_outside_the_raw_sales_prefix_when_put_then_nothing_is_notified(
    events: tuple[Any, Any, str, str],
) -> None:
    s3, sqs, raw, url = events
    s3.put_object(Bucket=raw, Key="quarantine/2024/03/01/x.json", Body=b"{}")
    s3.put_object(Bucket=raw, Key="sales/2024/03/01/notes.txt", Body=b"{}")

    assert _drain(sqs, url) == []


def test_given_the_compaction_job_when_run_locally_then_it_is_given_the_stacks_queue(
    stack: LocalStack,
) -> None:
    definition = GlueJobDefinition.from_stack(stack, "CompactSalesJob")

    assert definition.arguments["--raw_queue_url"] == stack.ref("RawEventsQueue")
    assert definition.arguments["--raw_queue_url"].endswith(f"/{stack.stack_name}-raw-events")
