"""An in-memory Kinesis with PutRecords' limits and scripted per-record failures."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

HALF = 2**127
FailPlan = Callable[[int, dict[str, Any]], str | None]


class FakeKinesis:
    """Two shards split at 2^127; ``fail(call_index, record)`` returns an error code or None."""

    def __init__(self, fail: FailPlan | None = None, call_error: str | None = None) -> None:
        self.fail = fail or (lambda _call, _record: None)
        self.call_error = call_error
        self.shards: dict[str, list[tuple[str, bytes]]] = {
            "shardId-000000000000": [],
            "shardId-000000000001": [],
        }
        self.calls: list[list[dict[str, Any]]] = []

    @staticmethod
    def shard_of(key: str) -> str:
        value = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")  # noqa: S324
        return "shardId-000000000000" if value < HALF else "shardId-000000000001"

    def list_shards(self, **_: Any) -> dict[str, Any]:
        return {
            "Shards": [
                {
                    "ShardId": "shardId-000000000000",
                    "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(HALF - 1)},
                    "SequenceNumberRange": {"StartingSequenceNumber": "1"},
                },
                {
                    "ShardId": "shardId-000000000001",
                    "HashKeyRange": {
                        "StartingHashKey": str(HALF),
                        "EndingHashKey": str(2**128 - 1),
                    },
                    "SequenceNumberRange": {"StartingSequenceNumber": "1"},
                },
            ]
        }

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if self.call_error:
            raise ClientError(
                {
                    "Error": {"Code": self.call_error, "Message": f"Stream {StreamName} not found"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutRecords",
            )
        # The service's own limits: a producer that breaks them is a bug, not a retry.
        assert len(Records) <= 500, f"{len(Records)} records in one call"
        sizes = [len(r["Data"]) + len(r["PartitionKey"].encode()) for r in Records]
        assert sum(sizes) <= 5 * 1024 * 1024, f"{sum(sizes)} bytes in one call"
        assert max(sizes) <= 1024 * 1024, f"a record of {max(sizes)} bytes"
        call_index = len(self.calls)
        self.calls.append(Records)
        results: list[dict[str, Any]] = []
        failed = 0
        for record in Records:
            code = self.fail(call_index, record)
            if code:
                failed += 1
                results.append({"ErrorCode": code, "ErrorMessage": f"{code} for test"})
                continue
            shard = self.shard_of(record["PartitionKey"])
            self.shards[shard].append((record["PartitionKey"], record["Data"]))
            results.append({"SequenceNumber": str(len(self.shards[shard])), "ShardId": shard})
        return {"FailedRecordCount": failed, "Records": results}
