"""The AWS adapters of the ingest core, built once per process by each consumer runtime.

Both the Lambda handler and the KCL record processor store batches the same way, so they
build their clients here: botocore's standard retry mode with a short budget (a batch that
cannot be stored goes back to the platform, which retries it whole), bounded timeouts so a
hung call cannot outlive the invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.ingest.inventory import DynamoInventory, InventoryState
from pipeline.ingest.store import RawStore, S3RawStore

if TYPE_CHECKING:
    from pipeline.settings import IngestSettings


def build_adapters(settings: IngestSettings) -> tuple[RawStore, InventoryState | None]:
    """The raw store and, when the template declares the table, the inventory state."""
    # Imported here: building boto3 clients costs ~0.2 s, kept off handler import.
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20
    )
    session = boto3.session.Session()
    store = S3RawStore(settings.raw_bucket, session.client("s3", config=config))
    inventory = (
        DynamoInventory(settings.inventory_table, session.client("dynamodb", config=config))
        if settings.inventory_table
        else None
    )
    return store, inventory
