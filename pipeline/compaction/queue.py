"""The SQS adapter of the compaction job: the raw zone's event queue.

Receive, delete and release messages of one queue over one injected client. ``botocore``
errors become :class:`~pipeline.errors.TransientError` or
:class:`~pipeline.errors.TerminalError` here (:mod:`pipeline.aws_errors`), so the core never
looks at AWS error codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pipeline.aws_errors import translated

if TYPE_CHECKING:
    from collections.abc import Sequence

    import boto3

#: SQS returns at most ten messages per call, and takes at most ten entries per batch call.
BATCH: Final = 10


@dataclass(frozen=True)
class Message:
    """One received message: its body and the handle that deletes or releases it."""

    message_id: str
    receipt: str
    body: str


class RawQueue:
    """The raw zone's event queue (``url``) through an injected SQS client."""

    def __init__(self, sqs_client: Any, url: str) -> None:
        self._sqs = sqs_client
        self.url = url

    @classmethod
    def from_session(cls, session: boto3.session.Session, url: str) -> RawQueue:
        return cls(session.client("sqs"), url)

    def receive(self, n: int, *, wait_seconds: int) -> list[Message]:
        """Up to ``n`` (<= 10) messages; hidden from other receivers for the queue's
        visibility timeout, then visible again unless deleted."""
        with translated(f"receive {self.url}", service="sqs", resource=self.url):
            out = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(n, BATCH),
                WaitTimeSeconds=wait_seconds,
            )
        return [
            Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""))
            for m in out.get("Messages", [])
        ]

    def delete(self, receipts: Sequence[str]) -> int:
        """Delete the messages; how many SQS refused (an expired handle: the message is
        visible again and a later run reads its object once more, which is harmless)."""
        refused = 0
        for start in range(0, len(receipts), BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": r}
                for i, r in enumerate(receipts[start : start + BATCH])
            ]
            with translated(f"delete from {self.url}", service="sqs", resource=self.url):
                out = self._sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            refused += len(out.get("Failed", []))
        return refused

    def release(self, receipts: Sequence[str]) -> None:
        """Make the messages visible again now (a run that failed hands them back at once,
        rather than after the visibility timeout)."""
        for start in range(0, len(receipts), BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0}
                for i, r in enumerate(receipts[start : start + BATCH])
            ]
            with translated(f"release to {self.url}", service="sqs", resource=self.url):
                self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)

    def waiting(self) -> int:
        """Messages visible in the queue (SQS's approximate count)."""
        with translated(f"attributes of {self.url}", service="sqs", resource=self.url):
            out = self._sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        return int(out.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))
