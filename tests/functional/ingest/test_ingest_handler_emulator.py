"""IngestStreamFunction end to end on the emulator, with the real Lambda event shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from pipeline.ingest import from_lambda_event, ingest_batch
from pipeline.ingest.inventory import DynamoInventory
from pipeline.ingest.store import S3RawStore
from pipeline.lake import ingest_quarantine_key, raw_key

if TYPE_CHECKING:
    from types import ModuleType

    from pipeline.local.stack import LocalStack

SAMPLE = Path(__file__).parents[3] / "infra" / "events" / "kinesis_sales.json"


def _sample() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE.read_text())
    return event


def _keys(event: dict[str, Any]) -> tuple[str, str]:
    records = from_lambda_event(event)
    args = (
        records[0].shard_id,
        records[0].sequence_number,
        records[-1].sequence_number,
        records[0].approximate_arrival,
    )
    return raw_key(*args), ingest_quarantine_key(*args)


def _objects(stack: LocalStack, prefix: str) -> dict[str, bytes]:
    s3 = stack.session().client("s3")
    bucket = stack.ref("RawBucket")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


class _Stream:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _slow_down(**_: Any) -> AWSResponse:
    body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
    return AWSResponse("http://s3", 503, {}, _Stream(body))


def _unreachable(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="http://s3")


def test_given_the_sample_event_when_invoked_then_raw_and_quarantine_objects_land(
    stack: LocalStack, ingest_app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    event = _sample()

    response = ingest_app.lambda_handler(event, None)

    assert response == {"batchItemFailures": []}
    raw, quarantine = _keys(event)
    assert list(_objects(stack, "sales/")) == [raw]
    lines = [json.loads(x) for x in _objects(stack, "sales/")[raw].splitlines()]
    assert [e["event_id"] for e in lines] == ["evt-0001", "evt-0002", "evt-0003"]
    assert lines[1]["promo"] == "spring"
    (bad,) = [json.loads(x) for x in _objects(stack, "quarantine/")[quarantine].splitlines()]
    assert (bad["reason"], bad["sequence_number"]) == (
        "schema_violation",
        event["Records"][3]["kinesis"]["sequenceNumber"],
    )
    out = capsys.readouterr().out
    assert '"Namespace":"FMCG/Business"' in out and '"StockoutCount":[1.0]' in out


@pytest.mark.parametrize("fault", [_slow_down, _unreachable], ids=["s3-503", "connection"])
def test_given_s3_fails_transiently_when_invoked_then_the_whole_batch_is_reported_failed(
    stack: LocalStack, ingest_app: ModuleType, fault: Any
) -> None:
    event = _sample()
    store, _ = ingest_app._adapters()
    store._s3.meta.events.register("before-send.s3.PutObject", fault)

    response = ingest_app.lambda_handler(event, None)

    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}
    assert _objects(stack, "sales/") == {}


def test_given_a_failed_batch_when_lambda_retries_then_the_same_key_is_overwritten(
    stack: LocalStack, ingest_app: ModuleType
) -> None:
    event = _sample()
    store, _ = ingest_app._adapters()
    calls = {"n": 0}

    def fail_quarantine_once(params: dict[str, Any], **_: Any) -> None:
        # The raw put lands, the quarantine put fails: the batch must not be acknowledged.
        if params["Key"].startswith("quarantine/") and calls["n"] == 0:
            calls["n"] += 1
            raise EndpointConnectionError(endpoint_url="http://s3")

    store._s3.meta.events.register("provide-client-params.s3.PutObject", fail_quarantine_once)
    first = ingest_app.lambda_handler(event, None)
    after_failure = _objects(stack, "sales/")

    second = ingest_app.lambda_handler(event, None)

    assert len(first["batchItemFailures"]) == 4 and second == {"batchItemFailures": []}
    assert list(after_failure) == list(_objects(stack, "sales/")) == [_keys(event)[0]]
    assert len(_objects(stack, "quarantine/")) == 1


def test_given_out_of_order_and_redelivered_events_then_the_stockout_count_is_exact(
    stack: LocalStack,
) -> None:
    session = stack.session()
    inventory = DynamoInventory(stack.ref("InventoryStateTable"), session.client("dynamodb"))
    store = S3RawStore(stack.ref("RawBucket"), session.client("s3"))

    def batch(*events: tuple[str, str, str, int]) -> int | None:
        from tests.support.kinesis_events import KinesisPut, kinesis_lambda_event, sequence_number

        puts = [
            KinesisPut(
                json.dumps(
                    {
                        "event_id": eid,
                        "event_type": "stock_count",
                        "sku_id": sku,
                        "location_id": "L1",
                        "quantity": 0,
                        "stock_on_hand": stock,
                        "event_time": f"2025-03-01T{hh}:00:00Z",
                    }
                ).encode(),
                f"{sku}#L1",
                sequence_number(i),
                1740820630.0,
            )
            for i, (eid, sku, hh, stock) in enumerate(events)
        ]
        records = from_lambda_event(kinesis_lambda_event(puts))
        return ingest_batch(records, store=store, inventory=inventory).stockout_count

    assert batch(("a1", "A", "10", 0), ("b1", "B", "10", 0)) == 2
    assert batch(("a1", "A", "10", 0), ("b1", "B", "10", 0)) == 2  # re-delivered
    assert batch(("a0", "A", "09", 5)) == 2  # older than what A holds
    assert batch(("a2", "A", "11", 4), ("a3", "A", "12", 0), ("b2", "B", "11", 1)) == 1
    assert inventory.stockout_count() == 1


def test_given_a_concurrent_writer_between_read_and_commit_then_the_transition_counts_once(
    stack: LocalStack,
) -> None:
    from pipeline.ingest import StockObservation

    ddb = stack.session().client("dynamodb")
    table = stack.ref("InventoryStateTable")
    rival = DynamoInventory(table, ddb)

    class Raced(DynamoInventory):
        raced = False

        def _read(self, pairs: list[tuple[str, str]]) -> Any:
            states = super()._read(pairs)
            if not self.raced:  # another invocation commits the same pair right after our read
                self.raced = True
                rival.apply([StockObservation("A", "L1", 5, "e5", 0)])
            return states

    inventory = Raced(table, ddb, backoff_s=0.0)

    count = inventory.apply([StockObservation("A", "L1", 6, "e6", 0)])

    assert inventory.raced and count == 1
    item = ddb.get_item(TableName=table, Key={"PK": {"S": "PAIR#A#L1"}}, ConsistentRead=True)
    assert item["Item"]["event_id"] == {"S": "e6"}
