"""A fresh, isolated lake (raw and curated buckets, a Glue database) on an already
provisioned stack: much cheaper than provisioning a whole stack, so
property tests can afford one per example."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.forecasting.job import PANDAS_TYPES
from pipeline.lake.tables import TABLES, iceberg_catalog, load_table, read_rows
from pipeline.local.provision import bucket_notifications
from pipeline.local.template import load_template

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.local.stack import LocalStack


@dataclass(frozen=True)
class Lake:
    raw: str
    curated: str
    database: str
    #: The raw bucket's event queue (URL), when the lake has one.
    queue: str = ""


def fresh_lake(
    stack: LocalStack,
    session: Any = None,
    *,
    queue: bool = False,
    visibility_timeout: int | None = None,
) -> Lake:
    """New buckets and a new, empty database (the jobs create their Iceberg tables); with
    ``queue``, an event queue the raw bucket notifies as the template's does (S3's test
    event already taken off it)."""
    session = session or stack.session()
    s3, glue = session.client("s3"), session.client("glue")
    tag = uuid.uuid4().hex[:8]
    lake = Lake(
        f"{stack.stack_name}-{tag}-raw",
        f"{stack.stack_name}-{tag}-cur",
        f"{stack.ref('LakeDatabase')}_{tag}",
        _event_queue(stack, session, f"{stack.stack_name}-{tag}-events", visibility_timeout)
        if queue
        else "",
    )
    s3.create_bucket(Bucket=lake.raw)
    s3.create_bucket(Bucket=lake.curated)
    glue.create_database(DatabaseInput={"Name": lake.database})
    if queue:
        _notify(stack, session, lake)
    return lake


def _event_queue(stack: LocalStack, session: Any, name: str, visibility: int | None) -> str:
    template = load_template(stack.template_path)["Resources"]["RawEventsQueue"]["Properties"]
    attributes = {
        "MessageRetentionPeriod": str(template["MessageRetentionPeriod"]),
        "VisibilityTimeout": str(visibility or template["VisibilityTimeout"]),
    }
    url: str = session.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def _notify(stack: LocalStack, session: Any, lake: Lake) -> None:
    """The template's notification configuration of the raw bucket, to the lake's queue."""
    sqs = session.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=lake.queue, AttributeNames=["QueueArn"])
    config = load_template(stack.template_path)["Resources"]["RawBucket"]["Properties"]
    cfn = config["NotificationConfiguration"]
    for entry in cfn["QueueConfigurations"]:
        entry["Queue"] = arn["Attributes"]["QueueArn"]
    session.client("s3").put_bucket_notification_configuration(
        Bucket=lake.raw, NotificationConfiguration=bucket_notifications(cfn)
    )
    # S3 sends a test event when the configuration is set: not what a test looks at.
    for m in sqs.receive_message(QueueUrl=lake.queue, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=lake.queue, ReceiptHandle=m["ReceiptHandle"])


def curated_rows(session: Any, database: str, table: str, row_filter: str = "true") -> pd.DataFrame:
    """The current snapshot's rows of a curated table (none before its first run), without
    the partition columns."""
    spec = next(t for t in TABLES if t.name == table)
    columns = tuple(spec.columns.names)
    rows = read_rows(iceberg_catalog(session), database, spec, row_filter, columns)
    frame: pd.DataFrame = rows.to_pandas(types_mapper=PANDAS_TYPES.get)
    return frame


def table_rows(session: Any, database: str, table: str) -> list[dict[str, Any]]:
    """The current snapshot's rows of a curated table as dicts, partition columns included."""
    spec = next(t for t in TABLES if t.name == table)
    rows: list[dict[str, Any]] = read_rows(iceberg_catalog(session), database, spec).to_pylist()
    return rows


def snapshot_files(session: Any, database: str, table: str) -> list[tuple[str, tuple[str, ...]]]:
    """The current snapshot's data files of a curated table: (path, partition values)."""
    spec = next(t for t in TABLES if t.name == table)
    loaded = load_table(iceberg_catalog(session), database, spec)
    if loaded is None:
        return []
    return sorted(
        (task.file.file_path, tuple(task.file.partition)) for task in loaded.scan().plan_files()
    )
