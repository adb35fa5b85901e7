"""Sending to an SQS queue does not count its messages (``emulator_patches``).

moto's backend in this process, no server: the patch is about how much work one send
does, which the count of passes over the queue's messages shows exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.sqs.models import Queue, SQSBackend

from pipeline.local.emulator_patches import sqs_send_without_counting


@pytest.fixture
def backend() -> SQSBackend:
    sqs_send_without_counting()
    return SQSBackend("us-east-1", "123456789012")


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times anything went over a queue's visible messages."""
    counted: list[int] = []
    messages = Queue.messages.fget

    def counting(self: Any) -> Any:
        counted.append(1)
        return messages(self)

    monkeypatch.setattr(Queue, "messages", property(counting))
    return counted


def test_given_a_backlog_when_messages_are_sent_then_none_of_them_counts_the_queue(
    backend: SQSBackend, passes: list[int]
) -> None:
    backend.create_queue("backlog")
    for i in range(300):
        backend.send_message("backlog", f"m{i}")
    sent = len(passes)
    backend.send_message_batch(
        "backlog",
        {
            str(i): {
                "Id": str(i),
                "MessageBody": f"b{i}",
                "MessageAttributes": {},
                "DelaySeconds": 0,
            }
            for i in range(10)
        },
    )

    assert (sent, len(passes)) == (0, 0)
    assert backend.get_queue("backlog").attributes["ApproximateNumberOfMessages"] == 310
    assert len(passes) == 1


def test_given_content_based_deduplication_when_the_same_body_is_sent_twice_then_one_message(
    backend: SQSBackend,
) -> None:
    backend.create_queue("dedupe.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    for _ in range(2):
        backend.send_message("dedupe.fifo", "same", group_id="g")

    assert backend.get_queue("dedupe.fifo").attributes["ApproximateNumberOfMessages"] == 1
