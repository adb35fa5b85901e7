"""The record processor under kclpy's KCLProcess, with the test playing the daemon's side.

Every test feeds the exact JSON lines the MultiLangDaemon writes (``initialize``,
``processRecords``, checkpoint replies, ``leaseLost``, ``shardEnded``,
``shutdownRequested``) and asserts the exact lines the processor answers with.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from pipeline.errors import TerminalError, TransientError
from pipeline.ingest import InMemoryRawStore
from pipeline.kcl.processor import (
    EXIT_BATCH_NOT_STORED,
    BatchNotStored,
    IngestRecordProcessor,
    RetryPolicy,
)
from stream_consumers.kcl import app

SHARD = "shardId-000000000001"
ARRIVAL_MS = 1740820630000  # 2025-03-01T09:17:10Z


def sales_event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"evt-{n:05d}",
        "event_type": "sale",
        "sku_id": f"SKU-{n % 7}",
        "location_id": f"STORE-{n % 3}",
        "quantity": 1 + n % 5,
        "stock_on_hand": 10,
        "event_time": "2025-03-01T09:00:00+00:00",
    }


def seq(n: int) -> str:
    return f"4959{n:052d}"


def record(n: int, data: bytes | None = None, sub: int = 0) -> dict[str, Any]:
    blob = data if data is not None else json.dumps(sales_event(n)).encode()
    return {
        "action": "record",
        "data": base64.b64encode(blob).decode(),
        "partitionKey": "SKU-1#STORE-1",
        "sequenceNumber": seq(n),
        "subSequenceNumber": sub,
        "approximateArrivalTimestamp": ARRIVAL_MS + n,
    }


def initialize(sequence: str = "TRIM_HORIZON") -> dict[str, Any]:
    return {
        "action": "initialize",
        "shardId": SHARD,
        "sequenceNumber": sequence,
        "subSequenceNumber": 0,
    }


def process(*records: dict[str, Any]) -> dict[str, Any]:
    return {"action": "processRecords", "millisBehindLatest": 0, "records": list(records)}


def checkpoint_reply(
    sequence: str | None, sub: int | None = None, error: str | None = None
) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "action": "checkpoint",
        "sequenceNumber": sequence,
        "subSequenceNumber": sub,
    }
    if error is not None:
        reply["error"] = error
    return reply


def status(action: str) -> dict[str, Any]:
    return {"action": "status", "responseFor": action}


def checkpoint_request(sequence: str | None, sub: int | None = None) -> dict[str, Any]:
    return {"action": "checkpoint", "sequenceNumber": sequence, "subSequenceNumber": sub}


class FailingStore(InMemoryRawStore):
    """Fails the first ``failures`` puts with ``error``, then stores."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.calls = 0

    def put(self, key: str, body: bytes) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        super().put(key, body)


def play(processor: IngestRecordProcessor, *daemon_lines: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the processor's process over the daemon's lines; return what it wrote back."""
    stdin = io.StringIO("".join(json.dumps(line) + "\n" for line in daemon_lines))
    out = io.StringIO()
    app.main(processor, stdin=stdin, protocol_out=out)
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def new_processor(store: InMemoryRawStore | None = None, **kwargs: Any) -> IngestRecordProcessor:
    sleeps: list[float] = []
    return IngestRecordProcessor(
        store=store if store is not None else InMemoryRawStore(), sleep=sleeps.append, **kwargs
    )


def raw_events(store: InMemoryRawStore) -> list[str]:
    return [
        json.loads(line)["event_id"]
        for key, body in sorted(store.objects.items())
        if key.startswith("sales/")
        for line in body.splitlines()
    ]


def test_given_a_batch_when_processed_then_stored_before_checkpoint_at_last_sequence() -> None:
    store = InMemoryRawStore()
    out = play(
        new_processor(store),
        initialize(),
        process(record(1), record(2), record(3)),
        checkpoint_reply(seq(3)),
    )
    assert out == [
        status("initialize"),
        checkpoint_request(seq(3)),
        status("processRecords"),
    ]
    assert raw_events(store) == ["evt-00001", "evt-00002", "evt-00003"]
    assert list(store.objects) == [f"sales/2025/03/01/{SHARD}-{seq(1)}-{seq(3)}.json"]


def test_given_bad_records_when_processed_then_quarantined_and_batch_still_checkpointed() -> None:
    store = InMemoryRawStore()
    bad = {**record(2), "data": "not base64!"}
    out = play(
        new_processor(store),
        initialize(),
        process(record(1), bad, record(3, data=b"{}")),
        checkpoint_reply(seq(3)),
    )
    assert out[1] == checkpoint_request(seq(3))
    assert raw_events(store) == ["evt-00001"]
    quarantine = store.objects[f"quarantine/2025/03/01/{SHARD}-{seq(1)}-{seq(3)}.json"]
    reasons = [json.loads(line)["reason"] for line in quarantine.splitlines()]
    assert reasons == ["invalid_base64", "schema_violation"]


def test_given_kpl_user_records_when_processed_then_checkpoint_carries_sub_sequence() -> None:
    out = play(
        new_processor(),
        initialize(),
        process(record(1, sub=0), {**record(2, sub=1), "sequenceNumber": seq(1)}),
        checkpoint_reply(seq(1), 1),
    )
    assert out[1] == checkpoint_request(seq(1), 1)


def test_given_an_empty_batch_when_processed_then_no_checkpoint() -> None:
    out = play(new_processor(), initialize(), process())
    assert out == [status("initialize"), status("processRecords")]


def test_given_throttled_checkpoint_when_retried_then_checkpoints_again() -> None:
    out = play(
        new_processor(),
        initialize(),
        process(record(1)),
        checkpoint_reply(seq(1), error="ThrottlingException"),
        checkpoint_reply(seq(1), error="ThrottlingException"),
        checkpoint_reply(seq(1)),
    )
    assert out == [status("initialize")] + [checkpoint_request(seq(1))] * 3 + [
        status("processRecords")
    ]


@pytest.mark.parametrize("error", ["ShutdownException", "InvalidStateException", "Boom"])
def test_given_non_retryable_checkpoint_error_when_replied_then_processor_stops_trying(
    error: str,
) -> None:
    processor = new_processor()
    out = play(processor, initialize(), process(record(1)), checkpoint_reply(seq(1), error=error))
    assert out == [status("initialize"), checkpoint_request(seq(1)), status("processRecords")]
    assert processor.checkpointed == (
        "TRIM_HORIZON",
        None,
    )  # the failed checkpoint is not recorded as done


def test_given_transient_store_failure_when_retried_then_stored_once_and_checkpointed() -> None:
    store = FailingStore(2, TransientError("put: SlowDown (503)"))
    out = play(new_processor(store), initialize(), process(record(1)), checkpoint_reply(seq(1)))
    assert out[1] == checkpoint_request(seq(1))
    assert store.calls == 3
    assert raw_events(store) == ["evt-00001"]


def test_given_store_keeps_failing_when_retries_spent_then_exits_without_checkpoint() -> None:
    store = FailingStore(99, TransientError("put: SlowDown (503)"))
    processor = new_processor(store, retry=RetryPolicy(attempts=3, backoff_s=0.01))
    stdin = io.StringIO(json.dumps(initialize()) + "\n" + json.dumps(process(record(1))) + "\n")
    out = io.StringIO()
    with pytest.raises(BatchNotStored) as exc:
        app.main(processor, stdin=stdin, protocol_out=out)
    assert exc.value.code == EXIT_BATCH_NOT_STORED
    assert str(exc.value) == f"batch of {SHARD} not stored: put: SlowDown (503)"
    assert store.calls == 3
    # Only the initialize status: no checkpoint and no processRecords acknowledgement.
    assert [json.loads(x) for x in out.getvalue().splitlines() if x.strip()] == [
        status("initialize")
    ]


def test_given_terminal_store_failure_when_processing_then_exits_at_once() -> None:
    store = FailingStore(99, TerminalError("put: AccessDenied (403)"))
    stdin = io.StringIO(json.dumps(initialize()) + "\n" + json.dumps(process(record(1))) + "\n")
    with pytest.raises(BatchNotStored) as exc:
        app.main(new_processor(store), stdin=stdin, protocol_out=io.StringIO())
    assert str(exc.value) == f"batch of {SHARD} not stored: put: AccessDenied (403)"
    assert store.calls == 1


def test_given_lease_lost_when_notified_then_no_checkpoint() -> None:
    out = play(
        new_processor(),
        initialize(),
        process(record(1)),
        checkpoint_reply(seq(1)),
        {"action": "leaseLost"},
    )
    assert out[-1] == status("leaseLost")
    assert out[-2] == status("processRecords")


def test_given_shard_end_when_notified_then_checkpoints_at_end_of_shard() -> None:
    out = play(
        new_processor(),
        initialize(),
        {"action": "shardEnded"},
        checkpoint_reply(None),
    )
    assert out == [status("initialize"), checkpoint_request(None), status("shardEnded")]


def test_given_shutdown_requested_after_failed_checkpoint_then_checkpoints_durable_batch() -> None:
    out = play(
        new_processor(),
        initialize(),
        process(record(1), record(2)),
        checkpoint_reply(seq(2), error="InvalidStateException"),
        {"action": "shutdownRequested"},
        checkpoint_reply(seq(2)),
    )
    assert out == [
        status("initialize"),
        checkpoint_request(seq(2)),
        status("processRecords"),
        checkpoint_request(seq(2)),
        status("shutdownRequested"),
    ]


def test_given_shutdown_requested_when_all_checkpointed_then_nothing_more_to_checkpoint() -> None:
    out = play(
        new_processor(),
        initialize(),
        process(record(1)),
        checkpoint_reply(seq(1)),
        {"action": "shutdownRequested"},
    )
    assert out[-1] == status("shutdownRequested")
    assert out.count(checkpoint_request(seq(1))) == 1


def test_given_metrics_when_batch_stored_then_protocol_stdout_carries_only_protocol_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    processor = new_processor(on_result=app._emit_metrics)
    out = play(processor, initialize(), process(record(1)), checkpoint_reply(seq(1)))
    assert out == [status("initialize"), checkpoint_request(seq(1)), status("processRecords")]
    captured = capsys.readouterr()
    assert captured.out == ""
    emf = [json.loads(x) for x in captured.err.splitlines() if '"_aws"' in x]
    assert [m["IngestedEvents"] for m in emf if "IngestedEvents" in m] == [[1.0]]
