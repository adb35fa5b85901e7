"""``fmcg quarantine list | show | replay``: the records ingest rejected, in the raw bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from pipeline.aws_errors import MISSING_OBJECT_CODES, error_code
from pipeline.cli.console import console, err_console, untrusted
from pipeline.cli.local import current_stack
from pipeline.errors import InvalidInputError, NotFoundError, TerminalError
from pipeline.lake.layout import INGEST_QUARANTINE_PREFIX
from pipeline.local.stack import LocalStack
from pipeline.produce import Producer
from pipeline.produce.replay import load_fixes, parse_quarantine, plan_replay

app = typer.Typer(help="Inspect and replay quarantined records.", no_args_is_help=True)


def _raw_bucket_objects(stack: LocalStack) -> tuple[Any, str]:
    return stack.session().client("s3"), stack.ref("RawBucket")


def _full_key(key: str) -> str:
    return (
        key
        if key.startswith(INGEST_QUARANTINE_PREFIX)
        else INGEST_QUARANTINE_PREFIX + key.lstrip("/")
    )


def _read(s3: Any, bucket: str, key: str) -> bytes:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as e:
        if error_code(e) in MISSING_OBJECT_CODES:
            raise NotFoundError(f"no quarantine object s3://{bucket}/{key}") from e
        raise TerminalError(f"cannot read s3://{bucket}/{key}: {e}") from e
    return body


@app.command("list")
def list_() -> None:
    """List quarantine objects (one per consumer batch that had rejected records)."""
    s3, bucket = _raw_bucket_objects(current_stack())
    table = Table("key", "bytes", "last modified")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=INGEST_QUARANTINE_PREFIX
    ):
        for obj in page.get("Contents", []):
            table.add_row(obj["Key"], str(obj["Size"]), obj["LastModified"].isoformat())
            count += 1
    console.print(table if count else "no quarantined records")


@app.command()
def show(key: Annotated[str, typer.Argument(help="Object key (under quarantine/).")]) -> None:
    """Show the records of one quarantine object with their reason codes."""
    s3, bucket = _raw_bucket_objects(current_stack())
    records = parse_quarantine(_read(s3, bucket, _full_key(key)))
    table = Table("shard:sequence", "reason", "detail", "data")
    for r in records:
        sub = "" if r.sub_sequence is None else f"/{r.sub_sequence}"
        # Every cell came from the object, and detail and data from the producer's bytes.
        cells = (f"{r.shard_id}:{r.sequence_number}{sub}", r.reason, r.detail, r.preview)
        table.add_row(*(untrusted(cell) for cell in cells))
    console.print(table)


@app.command()
def replay(
    key: Annotated[str, typer.Argument(help="Object key (under quarantine/).")],
    fix_file: Annotated[
        Path | None,
        typer.Option(
            help="Corrected events (JSON array or JSON lines) to produce instead.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Re-inject the records of a quarantine object that validate now (or their fixes)."""
    stack = current_stack()
    s3, bucket = _raw_bucket_objects(stack)
    records = parse_quarantine(_read(s3, bucket, _full_key(key)))
    fixes = load_fixes(_read_text(fix_file)) if fix_file else None
    plan = plan_replay(records, fixes)
    for where, reason in plan.still_invalid:
        err_console.print("[yellow]still invalid[/]", untrusted(f"{where}: {reason}"))
    if plan.events:
        producer = Producer(stack.session().client("kinesis"), stack.ref("SalesStream"))
        report = producer.put(plan.events)
        console.print(f"replayed {report.events} events to {stack.ref('SalesStream')}")
    else:
        console.print("nothing to replay")


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{path} is not UTF-8 text: {e.reason}") from e
