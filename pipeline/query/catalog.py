"""The Glue tables of a database as the query engines need them: name, location, columns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import awswrangler as wr
import pyarrow as pa

from pipeline.aws_errors import translated
from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    import boto3

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    # Athena's timestamp has no zone; the curated zone stores UTC in it.
    "timestamp": pa.timestamp("us"),
}
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def arrow_type(glue_type: str) -> pa.DataType:
    """The Arrow type of a Glue/Hive column type (``varchar(10)`` reads as ``varchar``)."""
    name = glue_type.strip().lower()
    decimal = _DECIMAL.fullmatch(name)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    base = name.split("(", 1)[0]
    if base not in _SIMPLE_TYPES:
        raise ConfigurationError(f"Glue column type {glue_type!r} is not supported locally")
    return _SIMPLE_TYPES[base]


@dataclass(frozen=True)
class TableInfo:
    """One catalog table: its S3 location, its column schema and its partition keys."""

    name: str
    location: str
    columns: pa.Schema
    partition_keys: pa.Schema

    @classmethod
    def from_glue(cls, table: dict[str, Any], default_location: str) -> TableInfo:
        storage = table.get("StorageDescriptor", {})
        columns = pa.schema(
            [(c["Name"], arrow_type(c["Type"])) for c in storage.get("Columns", [])]
        )
        keys = pa.schema(
            [(c["Name"], arrow_type(c["Type"])) for c in table.get("PartitionKeys", [])]
        )
        return cls(table["Name"], storage.get("Location") or default_location, columns, keys)


def catalog_tables(
    database: str, *, curated_bucket: str, session: boto3.session.Session
) -> list[TableInfo]:
    """Every table of ``database`` (a table without a location defaults to the curated zone)."""
    with translated(f"list tables of {database}", service="glue", resource=database):
        tables = list(wr.catalog.get_tables(database=database, boto3_session=session))
    return [
        TableInfo.from_glue(t, f"s3://{curated_bucket}/{t['Name']}/")
        for t in sorted(tables, key=lambda t: str(t["Name"]))
    ]
