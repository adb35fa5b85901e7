"""The emulator's moto patches keep AWS behaviour (``pipeline.local.emulator_patches``).

Each test talks to the patched server over HTTP, as the pipeline does. Run the module with
``FMCG_EMULATOR_PATCHES=0`` to see the retention test fail on plain moto.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from pipeline.local.emulator import aws_session, start_server, stop_server

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def ddb(emulator_url: str) -> Any:
    return aws_session(emulator_url).client("dynamodb")


def _table(ddb: Any, *, range_key: bool = False) -> str:
    name = f"t{uuid.uuid4().hex[:10]}"
    keys = [("PK", "HASH"), *([("SK", "RANGE")] if range_key else [])]
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
    )
    return name


def _items(ddb: Any, table: str) -> list[dict[str, Any]]:
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i.get("SK", {}).get("S", "")))


def _put(table: str, pk: str, v: str, condition: str | None = None, **extra: Any) -> Any:
    put: dict[str, Any] = {"TableName": table, "Item": {"PK": {"S": pk}, "v": {"S": v}, **extra}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _add(table: str, key: dict[str, Any], by: int) -> Any:
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "ADD #c :d",
            "ExpressionAttributeNames": {"#c": "count"},
            "ExpressionAttributeValues": {":d": {"N": str(by)}},
        }
    }


def test_given_a_failing_condition_when_transact_write_then_every_item_rolls_back(ddb: Any) -> None:
    table = _table(ddb)
    ddb.put_item(TableName=table, Item={"PK": {"S": "a"}, "v": {"S": "1"}})
    ddb.put_item(TableName=table, Item={"PK": {"S": "c"}, "v": {"S": "1"}, "count": {"N": "5"}})
    ddb.put_item(TableName=table, Item={"PK": {"S": "d"}, "v": {"S": "1"}})
    before = _items(ddb, table)

    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(
            TransactItems=[
                _put(table, "a", "2"),  # overwrites an item
                _put(table, "b", "2", "attribute_not_exists(PK)"),  # creates one
                _add(table, {"PK": {"S": "c"}}, 3),  # updates one in place
                {"Delete": {"TableName": table, "Key": {"PK": {"S": "d"}}}},
                _put(table, "e", "2", "attribute_exists(PK)"),  # fails: e does not exist
            ]
        )

    assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in info.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert _items(ddb, table) == before


def test_given_a_range_key_table_when_a_transaction_is_cancelled_then_it_rolls_back(
    ddb: Any,
) -> None:
    table = _table(ddb, range_key=True)
    for sk in ("1", "9"):
        ddb.put_item(TableName=table, Item={"PK": {"S": "p"}, "SK": {"S": sk}, "v": {"S": "old"}})
    before = _items(ddb, table)

    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(
            TransactItems=[
                _put(table, "p", "new", SK={"S": "1"}),
                _put(table, "p", "new", SK={"S": "2"}),
                _put(table, "q", "new", SK={"S": "1"}),
                _add(table, {"PK": {"S": "p"}, "SK": {"S": "3"}}, 1),
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"PK": {"S": "p"}, "SK": {"S": "9"}},
                        "ConditionExpression": "v = :x",
                        "ExpressionAttributeValues": {":x": {"S": "something else"}},
                    }
                },
            ]
        )

    assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(ddb, table) == before


def test_given_an_item_twice_when_transact_write_then_validation_error_and_nothing_written(
    ddb: Any,
) -> None:
    table = _table(ddb)
    ddb.put_item(TableName=table, Item={"PK": {"S": "a"}, "v": {"S": "1"}})

    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(
            TransactItems=[_put(table, "b", "2"), _put(table, "a", "2"), _put(table, "a", "3")]
        )

    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert _items(ddb, table) == [{"PK": {"S": "a"}, "v": {"S": "1"}}]


def test_given_two_tables_when_a_transaction_commits_then_every_write_lands(ddb: Any) -> None:
    first, second = _table(ddb), _table(ddb)
    ddb.put_item(TableName=first, Item={"PK": {"S": "gone"}, "v": {"S": "1"}})

    ddb.transact_write_items(
        TransactItems=[
            _put(first, "a", "1", "attribute_not_exists(PK)"),
            {"Delete": {"TableName": first, "Key": {"PK": {"S": "gone"}}}},
            _add(second, {"PK": {"S": "counter"}}, 7),
        ]
    )

    assert _items(ddb, first) == [{"PK": {"S": "a"}, "v": {"S": "1"}}]
    assert _items(ddb, second) == [{"PK": {"S": "counter"}, "count": {"N": "7"}}]


def _tracked(url: str, service: str, model: str) -> int:
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=30) as response:
        return len(json.load(response).get(service, {}).get(model, []))


def test_given_many_transactions_then_the_emulator_tracks_only_live_items(
    emulator_url: str, ddb: Any
) -> None:
    # Plain moto keeps every item it ever created, each transaction's copy of the whole
    # table included: 20 transactions of 3 actions over 30 items made ~1,800 of them.
    table = _table(ddb)
    for n in range(30):
        ddb.put_item(TableName=table, Item={"PK": {"S": f"k{n}"}, "v": {"S": "0"}})
    tracked_before = _tracked(emulator_url, "dynamodb", "Item")

    for n in range(20):
        ddb.transact_write_items(
            TransactItems=[
                _put(table, f"k{n}", str(n + 1)),
                _put(table, f"k{n + 1}", str(n + 1)),
                _add(table, {"PK": {"S": "counter"}}, 1),
            ]
        )

    assert len(_items(ddb, table)) == 31
    # The counter is the one new live item; overwritten items are freed.
    assert _tracked(emulator_url, "dynamodb", "Item") - tracked_before <= 1


def test_s3_put_get_list_and_versions_round_trip(emulator_url: str) -> None:
    s3 = aws_session(emulator_url).client("s3")
    bucket = f"b{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    s3.put_object(Bucket=bucket, Key="sales/a.ndjson", Body=b'{"n":1}\n')
    s3.put_object(Bucket=bucket, Key="sales/a.ndjson", Body=b'{"n":2}\n')
    s3.put_object(Bucket=bucket, Key="sales/b.ndjson", Body=b"x" * 100_000)

    assert s3.get_object(Bucket=bucket, Key="sales/a.ndjson")["Body"].read() == b'{"n":2}\n'
    assert s3.get_object(Bucket=bucket, Key="sales/b.ndjson")["Body"].read() == b"x" * 100_000
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="sales/")["Contents"]
    assert [o["Key"] for o in listed] == ["sales/a.ndjson", "sales/b.ndjson"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="sales/a.ndjson")["Versions"]
    assert len(versions) == 2
    (older,) = [v["VersionId"] for v in versions if not v["IsLatest"]]
    old = s3.get_object(Bucket=bucket, Key="sales/a.ndjson", VersionId=older)
    assert old["Body"].read() == b'{"n":1}\n'


def test_kinesis_records_stay_readable_from_trim_horizon(emulator_url: str) -> None:
    kinesis = aws_session(emulator_url).client("kinesis")
    stream = f"s{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    for n in range(50):
        kinesis.put_record(StreamName=stream, Data=f"r{n}".encode(), PartitionKey="k")

    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=100)["Records"]

    assert [r["Data"] for r in records] == [f"r{n}".encode() for n in range(50)]


@pytest.fixture
def own_emulator() -> Iterator[str]:
    """An emulator of its own, for a test that resets all of its state."""
    pid, url = start_server()
    try:
        yield url
    finally:
        stop_server(pid)


def test_given_objects_when_the_emulator_is_reset_then_it_is_empty_and_still_serves(
    own_emulator: str,
) -> None:
    s3 = aws_session(own_emulator).client("s3")
    s3.create_bucket(Bucket="before-reset")
    s3.put_object(Bucket="before-reset", Key="k", Body=b"v")

    request = urllib.request.Request(f"{own_emulator}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass

    assert s3.list_buckets()["Buckets"] == []
    s3.create_bucket(Bucket="after-reset")
    s3.put_object(Bucket="after-reset", Key="k", Body=b"w")
    assert s3.get_object(Bucket="after-reset", Key="k")["Body"].read() == b"w"


def test_given_an_object_written_by_multipart_upload_then_the_model_dump_still_answers(
    emulator_url: str,
) -> None:
    # pyarrow's S3 client (PyIceberg's file IO) writes by multipart upload; moto's dump
    # raised on such a key's status and answered 500 for every service.
    from pipeline.query.duckdb_engine import s3_filesystem

    session = aws_session(emulator_url)
    bucket = f"b{uuid.uuid4().hex[:10]}"
    session.client("s3").create_bucket(Bucket=bucket)
    with s3_filesystem(session).open_output_stream(f"{bucket}/multipart.bin") as out:
        out.write(b"x" * 1000)

    assert _tracked(emulator_url, "s3", "FakeKey") >= 1


def test_given_a_queue_backlog_when_drained_ten_at_a_time_then_each_message_once_and_counts_right(
    emulator_url: str,
) -> None:
    sqs = aws_session(emulator_url).client("sqs")
    url = sqs.create_queue(QueueName=f"q{uuid.uuid4().hex[:10]}")["QueueUrl"]
    for start in range(0, 200, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
    seen: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        seen += [m["Body"] for m in messages]
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    retention = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])

    assert sorted(seen) == sorted(f"m{i}" for i in range(200))
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "200",
    }
    assert retention["Attributes"] == {"MessageRetentionPeriod": "345600"}
    with pytest.raises(ClientError, match="InvalidAttributeName"):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
