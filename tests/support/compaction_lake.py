"""A fresh, isolated lake (raw and curated buckets, a Glue database) on an already
provisioned stack: much cheaper than provisioning a whole stack, so
property tests can afford one per example."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.lake.tables import TABLES, iceberg_catalog, read_rows

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.local.stack import LocalStack


@dataclass(frozen=True)
class Lake:
    raw: str
    curated: str
    database: str


def fresh_lake(stack: LocalStack, session: Any = None) -> Lake:
    """New buckets and a new, empty database (the jobs create their Iceberg tables)."""
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
    return lake


def curated_rows(session: Any, database: str, table: str, row_filter: str = "true") -> pd.DataFrame:
    """The current snapshot's rows of a curated table (none before its first run), without
    the partition columns."""
    spec = next(t for t in TABLES if t.name == table)
    rows = read_rows(iceberg_catalog(session), database, spec, row_filter, tuple(spec.columns.names))
    return rows.to_pandas()
