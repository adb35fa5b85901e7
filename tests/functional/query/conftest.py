"""A fresh curated bucket and Glue database per test, with the curated tables as Iceberg
tables created the way the jobs create them (no stack: the query engine needs only these)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from pipeline.lake.tables import ensure_table, iceberg_catalog, with_partition_columns
from pipeline.local.emulator import aws_session

if TYPE_CHECKING:
    from datetime import date

    import boto3
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from pipeline.lake.tables import TableSpec


@dataclass(frozen=True)
class IcebergLake:
    session: boto3.session.Session
    bucket: str
    database: str
    catalog: Catalog

    def table(self, spec: TableSpec) -> Table:
        return ensure_table(self.catalog, self.database, self.bucket, spec)

    def append(self, spec: TableSpec, rows: pa.Table, day: date | None = None) -> Table:
        """One commit adding ``rows`` (partitioned by ``day``, else by the spec's day column)."""
        table = self.table(spec)
        table.append(with_partition_columns(rows, spec, day))
        return table


@pytest.fixture
def lake(emulator_url: str) -> IcebergLake:
    session = aws_session(emulator_url)
    name = f"q{uuid.uuid4().hex[:10]}"
    session.client("s3").create_bucket(Bucket=name)
    session.client("glue").create_database(DatabaseInput={"Name": name})
    return IcebergLake(session, name, name, iceberg_catalog(session))
