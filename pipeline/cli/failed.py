"""``fmcg replay-failed``: put the ingest mapping's failed batches back on the stream."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from pipeline.cli.console import console, untrusted
from pipeline.produce import Producer
from pipeline.produce.failed_batches import FailedBatchBucket, replay_failed_batches
from pipeline.settings import FAILED_BATCHES_BUCKET, SALES_STREAM_NAME


def _names(bucket: str | None, stream: str | None) -> tuple[str, str, Any]:
    """Explicit option > environment variable > the running local stack; and a session."""
    bucket = bucket or os.environ.get(FAILED_BATCHES_BUCKET)
    stream = stream or os.environ.get(SALES_STREAM_NAME)
    if bucket and stream:
        import boto3

        return bucket, stream, boto3.session.Session()
    from pipeline.cli.local import current_stack

    stack = current_stack()
    return (
        bucket or stack.ref("FailedBatchesBucket"),
        stream or stack.ref("SalesStream"),
        stack.session(),
    )


def replay_failed(
    key: Annotated[
        str | None,
        typer.Argument(help="One object (aws/lambda/...); default: every one not yet replayed."),
    ] = None,
    *,
    bucket: Annotated[str | None, typer.Option(help="The failed-batches bucket.")] = None,
    stream: Annotated[str | None, typer.Option(help="The sales stream.")] = None,
) -> None:
    """Put the records of failed ingest batches back on the stream, in order, once each."""
    bucket, stream, session = _names(bucket, stream)
    report = replay_failed_batches(
        FailedBatchBucket(session.client("s3"), bucket),
        Producer(session.client("kinesis"), stream),
        key=key,
    )
    for replayed in report.replayed:
        # Keys stay whole on one line each, to be copied back as KEY.
        console.print("replayed", untrusted(replayed), soft_wrap=True)
    skipped = len(report.already_replayed)
    console.print(
        f"{report.records} records of {len(report.replayed)} failed batches put back on "
        f"{stream}; {skipped} already replayed, skipped",
        highlight=False,
        soft_wrap=True,
    )
