"""The Glue tables of a database as the query engines need them: name, location, columns.

Two kinds of table live in the catalog. A Hive-style table (Parquet under its location,
partition keys in the object paths) carries its columns in the Glue StorageDescriptor. An
Apache Iceberg table (Glue parameter ``table_type`` = ``ICEBERG``) is described by its
metadata file: its Glue columns may be sparse or missing, so they are not read here; the
engine reads the schema and the current snapshot's data files from the Iceberg metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

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
#: The Glue ``table_type`` parameter of an Iceberg table (Athena, Spark and PyIceberg write
#: it upper case; compared case-insensitively).
ICEBERG: Final = "ICEBERG"
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
    """One catalog table: its S3 location, its column schema and its partition keys.

    An Iceberg table (``iceberg``) has no columns nor partition keys here: its schema, its
    partitioning and its data files are in the Iceberg metadata at ``metadata_location``.
    """

    name: str
    location: str
    columns: pa.Schema
    partition_keys: pa.Schema
    iceberg: bool = False
    metadata_location: str | None = None

    @classmethod
    def from_glue(cls, table: dict[str, Any], default_location: str) -> TableInfo:
        storage = table.get("StorageDescriptor", {})
        location = storage.get("Location") or default_location
        parameters = table.get("Parameters", {})
        if str(parameters.get("table_type", "")).upper() == ICEBERG:
            empty = pa.schema([])
            return cls(
                table["Name"],
                location,
                empty,
                empty,
                iceberg=True,
                metadata_location=parameters.get("metadata_location"),
            )
        columns = pa.schema(
            [(c["Name"], arrow_type(c["Type"])) for c in storage.get("Columns", [])]
        )
        keys = pa.schema(
            [(c["Name"], arrow_type(c["Type"])) for c in table.get("PartitionKeys", [])]
        )
        return cls(table["Name"], location, columns, keys)


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
