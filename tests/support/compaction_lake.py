"""A fresh, isolated lake (raw and curated buckets, a Glue database with the template's
tables) on an already provisioned stack: much cheaper than provisioning a whole stack, so
property tests can afford one per example."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack

_READ_ONLY = (
    "DatabaseName",
    "CreateTime",
    "UpdateTime",
    "CreatedBy",
    "IsRegisteredWithLakeFormation",
    "CatalogId",
    "VersionId",
    "IsMultiDialectView",
    "IsMaterializedView",
    "Status",
)


@dataclass(frozen=True)
class Lake:
    raw: str
    curated: str
    database: str


def fresh_lake(stack: LocalStack, session: Any = None) -> Lake:
    """New buckets and a new database holding copies of the stack's curated tables."""
    session = session or stack.session()
    s3, glue = session.client("s3"), session.client("glue")
    tag = uuid.uuid4().hex[:8]
    lake = Lake(
        f"{stack.stack_name}-{tag}-raw",
        f"{stack.stack_name}-{tag}-cur",
        f"{stack.ref('LakeDatabase')}_{tag}",
    )
    s3.create_bucket(Bucket=lake.raw)
    s3.create_bucket(Bucket=lake.curated)
    glue.create_database(DatabaseInput={"Name": lake.database})
    old_bucket = stack.ref("CuratedBucket")
    for table in glue.get_tables(DatabaseName=stack.ref("LakeDatabase"))["TableList"]:
        table_input: dict[str, Any] = {k: v for k, v in table.items() if k not in _READ_ONLY}
        table_input["StorageDescriptor"]["Location"] = table_input["StorageDescriptor"][
            "Location"
        ].replace(old_bucket, lake.curated)
        params = table_input.get("Parameters", {})
        if "storage.location.template" in params:
            params["storage.location.template"] = params["storage.location.template"].replace(
                old_bucket, lake.curated
            )
        glue.create_table(DatabaseName=lake.database, TableInput=table_input)
    return lake
