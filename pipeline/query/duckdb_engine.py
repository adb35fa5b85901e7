"""The local engine: the Athena SQL through DuckDB over the curated zone.

Each Glue table becomes a DuckDB view over a pyarrow dataset, read through pyarrow's own S3
client (DuckDB's ``httpfs`` and ``iceberg`` extensions would have to be downloaded, and the
emulator setup promises no internet):

- an **Apache Iceberg** table's dataset is exactly its current snapshot's data files as
  PyIceberg plans them, with the Iceberg schema (:mod:`pipeline.query.iceberg`);
- a **Hive-style** table's dataset is every Parquet object under the table's S3 location,
  with the catalog's schema: Hive partition keys become columns like Athena's (strings),
  files missing a newer column read it as null (additive schema drift), and
  ``_``/``.``-prefixed objects are skipped like Athena skips them.

Either way column types match Athena's, and DuckDB pushes filters and projections into the
dataset scan, so only the needed files, row groups and columns are fetched.

No extension is fetched or loaded behind the SQL's back: DuckDB would otherwise download
and load one (code from the network) as soon as a query names a function or a URL scheme
it needs (``https://``, ``s3://``, ``read_json``...). Nothing here needs one: S3 is read by
pyarrow, and the extensions the engine uses (parquet, icu for ``TimeZone``, json) are
built into the Python package. The configuration is then locked, so the SQL cannot turn
autoloading back on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from botocore.exceptions import BotoCoreError, ClientError
from pyarrow import fs
from pyiceberg.exceptions import NoSuchTableError

from pipeline.aws_errors import translate
from pipeline.errors import InvalidInputError, NotFoundError, TerminalError, TransientError
from pipeline.query.iceberg import snapshot_dataset

if TYPE_CHECKING:
    import boto3
    import pandas as pd
    from pyiceberg.catalog import Catalog

    from pipeline.query.catalog import TableInfo


#: Every connection's settings (see the module docstring).
CONNECTION_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


def s3_filesystem(session: boto3.session.Session) -> fs.S3FileSystem:
    """A pyarrow S3 filesystem with the session's credentials, region and endpoint."""
    endpoint = session.client("s3").meta.endpoint_url
    credentials = session.get_credentials()
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    options: dict[str, object] = {"region": session.region_name or "us-east-1"}
    if frozen is not None:
        options.update(
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            session_token=frozen.token,
        )
    parsed = urlparse(endpoint)
    if parsed.hostname and not parsed.hostname.endswith("amazonaws.com"):
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
    return fs.S3FileSystem(**options)  # type: ignore[arg-type]


def table_dataset(table: TableInfo, filesystem: fs.FileSystem) -> ds.Dataset | pa.Table:
    """The table's data as a lazily scanned dataset (an empty table when nothing is there)."""
    path = table.location.removeprefix("s3://").rstrip("/")
    schema = pa.schema(list(table.columns) + list(table.partition_keys))
    partitioning = (
        ds.partitioning(table.partition_keys, flavor="hive") if len(table.partition_keys) else None
    )
    try:
        dataset = ds.dataset(
            path,
            schema=schema,
            format="parquet",
            filesystem=filesystem,
            partitioning=partitioning,
        )
    except (FileNotFoundError, OSError):
        return schema.empty_table()
    return dataset


def iceberg_dataset(
    table: TableInfo, database: str, catalog: Catalog, filesystem: fs.FileSystem
) -> ds.Dataset | pa.Table:
    """The current snapshot of the Iceberg table ``database.<table>`` as a dataset."""
    resource = f"{database}.{table.name}"
    try:
        loaded = catalog.load_table((database, table.name))
        return snapshot_dataset(loaded, resource, filesystem)
    except NoSuchTableError as e:  # dropped since the listing
        raise NotFoundError(f"table {resource} no longer exists") from e
    except (ClientError, BotoCoreError) as e:
        raise translate(e, f"read table {resource}", service="glue", resource=resource) from e
    except FileNotFoundError as e:  # a metadata file or manifest the catalog points at
        raise TerminalError(f"read table {resource}: {e}") from e
    except OSError as e:  # pyarrow's S3 reading the metadata or a manifest
        raise TransientError(f"read table {resource}: {e}") from e


def run_duckdb(
    sql: str,
    *,
    tables: list[TableInfo],
    session: boto3.session.Session,
    database: str,
    iceberg: Catalog | None = None,
) -> pd.DataFrame:
    """Run ``sql`` with the catalog tables it names as views (see :func:`referenced_tables`);
    names resolve bare or as ``db.table``.

    Iceberg tables are loaded through ``iceberg`` (by default PyIceberg's Glue catalog of
    ``session``, :func:`pipeline.lake.tables.iceberg_catalog`). Dates come back as
    ``datetime.date`` objects, as awswrangler returns Athena's.
    """
    filesystem = s3_filesystem(session)
    con = duckdb.connect(":memory:", config=CONNECTION_CONFIG)
    try:
        # Athena's clock is UTC: current_date must mean the same day here.
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
        needed = referenced_tables(con, sql, tables)
        if iceberg is None and any(t.iceberg for t in needed):
            from pipeline.lake.tables import iceberg_catalog

            iceberg = iceberg_catalog(session)
        for table in needed:
            if table.iceberg:
                assert iceberg is not None  # noqa: S101 - built above
                dataset = iceberg_dataset(table, database, iceberg, filesystem)
            else:
                dataset = table_dataset(table, filesystem)
            source = f"__source_{table.name}"
            con.register(source, dataset)
            con.execute(f'CREATE VIEW "{table.name}" AS SELECT * FROM "{source}"')
            con.execute(f'CREATE VIEW "{database}"."{table.name}" AS SELECT * FROM "{source}"')
        try:
            return con.execute(sql).df(date_as_object=True)
        except duckdb.InvalidInputException as e:
            failed = _SOURCE_FAILED.search(str(e))
            if failed is None:
                raise InvalidInputError(f"query: {error_summary(e)}") from e
            # pyarrow failed reading a table's files (a corrupt or missing object): not the
            # SQL's fault.
            detail = " ".join(str(e)[failed.end() :].split("\n\n", 1)[0].split())
            raise TerminalError(f"query failed: reading table {failed.group(1)}: {detail}") from e
        except (duckdb.ProgrammingError, duckdb.DataError, duckdb.NotImplementedException) as e:
            # Parser, binder, catalog and conversion errors: the SQL is at fault.
            raise InvalidInputError(f"query: {error_summary(e)}") from e
        except duckdb.Error as e:
            raise TerminalError(f"query failed: {error_summary(e)}") from e
    finally:
        con.close()


def referenced_tables(
    con: duckdb.DuckDBPyConnection, sql: str, tables: list[TableInfo]
) -> list[TableInfo]:
    """The tables ``sql`` names, so that only those are planned or listed; every table when
    DuckDB cannot tell (SQL that does not parse or bind without them) or when the SQL names
    none (``SHOW TABLES``, ``information_schema``). ``con`` must be the locked connection:
    binding may resolve a replacement scan, which would otherwise autoload an extension."""
    try:
        names = {name.lower() for name in con.get_table_names(sql)}
    except duckdb.Error:
        return tables
    return [t for t in tables if t.name.lower() in names] or tables


#: How DuckDB reports an error raised by a registered dataset's scan.
_SOURCE_FAILED: Final = re.compile(r"reading the stream registered as '__source_(.+?)' failed: ")


def error_summary(error: Exception) -> str:
    """DuckDB's message up to its first blank line: the error and any hint, on one line,
    without the quoted SQL and caret lines that follow."""
    head = str(error).strip().split("\n\n", 1)[0]
    return " ".join(head.split())
