"""Where the ingest core puts its NDJSON objects: S3 in production, memory in tests.

A put either returns (the object is durable: S3 acknowledges only after it is stored
redundantly) or raises :class:`TransientError` / :class:`TerminalError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pipeline.aws_errors import translated

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class RawStore(Protocol):
    """A bucket the core writes whole objects to."""

    def put(self, key: str, body: bytes) -> None:
        """Store ``body`` under ``key`` durably (overwriting), or raise a PipelineError."""


class S3RawStore:
    """A :class:`RawStore` over one S3 bucket."""

    def __init__(self, bucket: str, s3_client: S3Client) -> None:
        self.bucket = bucket
        self._s3 = s3_client

    def put(self, key: str, body: bytes) -> None:
        """PutObject ``body`` as NDJSON; botocore errors become Transient/TerminalError."""
        where = f"s3://{self.bucket}/{key}"
        with translated(f"put {where}", service="s3", resource=where):
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson"
            )


class InMemoryRawStore:
    """A :class:`RawStore` in a dict; for tests, benchmarks and dry runs."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        """Keep ``body`` under ``key`` (overwriting, like S3)."""
        self.objects[key] = body
