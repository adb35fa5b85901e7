"""The AWS adapters of the ingest core, built once per process by each consumer runtime.

Both the Lambda handler and the KCL record processor store batches the same way, so they
build their clients here: botocore's standard retry mode with a short budget (a batch that
cannot be stored goes back to the platform, which retries it whole), bounded timeouts so a
hung call cannot outlive the invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.aws_errors import client
from pipeline.ingest.inventory import DynamoInventory, InventoryState
from pipeline.ingest.store import RawStore, S3RawStore

if TYPE_CHECKING:
    from pipeline.settings import IngestSettings


def build_adapters(settings: IngestSettings) -> tuple[RawStore, InventoryState | None]:
    """The raw store and, when the template declares the table, the inventory state."""
    # Imported here: building boto3 clients costs ~0.2 s, kept off handler import.
    import boto3

    config: dict[str, Any] = {"max_attempts": 3, "connect_timeout": 5, "read_timeout": 20}
    session = boto3.session.Session()
    store = S3RawStore(settings.raw_bucket, client(session, "s3", **config))
    inventory = (
        DynamoInventory(settings.inventory_table, client(session, "dynamodb", **config))
        if settings.inventory_table
        else None
    )
    return store, inventory
