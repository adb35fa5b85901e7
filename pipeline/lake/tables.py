"""The curated zone's Apache Iceberg tables in the Glue Data Catalog, through PyIceberg.

``sales``, ``daily_demand`` and the ``forecasts`` archive are Iceberg format-v2 tables,
partitioned by identity on ``year``/``month``/``day`` (zero-padded strings of the row's day:
the event date, the location's local day, the forecast day), so data files keep the
``<table>/data/year=YYYY/month=MM/day=DD/`` shape and SQL written against the Hive layout
(``WHERE year = '2026'``) still prunes. The job creates a missing table on its first run
(:func:`ensure_table`, idempotent: a racing creator's table is simply loaded).

Row-level changes are copy-on-write (the table properties say so for every engine), so a
snapshot's data files are its rows: readers (DuckDB over a scan's plan, the forecaster)
never meet delete files.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import BotoCoreError, ClientError
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchIcebergTableError,
    NoSuchPropertyException,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.transforms import IdentityTransform

from pipeline.aws_errors import translate
from pipeline.compaction.schema import (
    DAILY_DEMAND_SCHEMA,
    DAILY_DEMAND_TABLE,
    DEMAND_HISTORY_SCHEMA,
    DEMAND_HISTORY_TABLE,
    SALES_SCHEMA,
    SALES_TABLE,
)
from pipeline.errors import TerminalError, TransientError
from pipeline.lake.fileio import FILE_IO

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import boto3
    from pyiceberg.table import Table

PARTITION_COLUMNS: Final = ("year", "month", "day")
#: The command that adopts a Hive-layout curated zone (:mod:`pipeline.lake.adopt`).
ADOPT_COMMAND: Final = "fmcg adopt-hive"
FORECASTS_TABLE: Final = "forecasts"

#: The archived forecasts (one row per series and forecast day; the latest run's wins).
FORECASTS_SCHEMA: Final = pa.schema(
    [
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("date", pa.date32()),
        ("forecast_val", pa.float64()),
        ("confidence_lower", pa.float64()),
        ("confidence_upper", pa.float64()),
        ("lower_95", pa.float64()),
        ("upper_95", pa.float64()),
        ("model", pa.string()),
        ("generated_at", pa.timestamp("us")),
    ]
)

#: Every table's properties. Copy-on-write: see the module docstring. Spark's MERGE,
#: UPDATE and DELETE read the same properties. Manifests merge as appends accumulate and
#: old metadata files are deleted, so planning a scan reads state that follows the table's
#: live data, not the number of runs ever committed.
TABLE_PROPERTIES: Final = {
    "format-version": "2",
    "commit.manifest-merge.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
    "write.delete.mode": "copy-on-write",
    "write.update.mode": "copy-on-write",
    "write.merge.mode": "copy-on-write",
    "write.parquet.compression-codec": "snappy",
}


@dataclass(frozen=True)
class TableSpec:
    """One curated table: its name, its columns, and the date column it partitions by."""

    name: str
    columns: pa.Schema
    day_column: str | None

    @property
    def schema(self) -> pa.Schema:
        """The table's columns with the partition columns last."""
        return pa.schema([*self.columns, *(pa.field(c, pa.string()) for c in PARTITION_COLUMNS)])


SALES: Final = TableSpec(SALES_TABLE, SALES_SCHEMA, None)  # by event_time's UTC date
DAILY_DEMAND: Final = TableSpec(DAILY_DEMAND_TABLE, DAILY_DEMAND_SCHEMA, "date")
FORECASTS: Final = TableSpec(FORECASTS_TABLE, FORECASTS_SCHEMA, "date")
TABLES: Final = (SALES, DAILY_DEMAND, FORECASTS)
#: Imported daily history (:mod:`pipeline.history`); created by the first import, read by
#: compaction when it rebuilds days of ``daily_demand``. Not in :data:`TABLES`: maintenance
#: and ``adopt-hive`` (both older than it) leave it alone.
DEMAND_HISTORY: Final = TableSpec(DEMAND_HISTORY_TABLE, DEMAND_HISTORY_SCHEMA, "date")


def iceberg_catalog(session: boto3.session.Session) -> Catalog:
    """The Glue catalog with the session's Glue client; files through pyarrow's S3
    (:mod:`.fileio`: a small file is one PutObject).

    Away from AWS (an ``AWS_ENDPOINT_URL`` on the session, the local emulator) the file IO
    gets the same endpoint and the session's credentials; on AWS it uses the default
    credential chain, which refreshes the role's credentials during a long job.
    """
    glue = session.client("glue")
    properties: dict[str, str] = {"s3.region": session.region_name or "us-east-1", **FILE_IO}
    endpoint = session.client("s3").meta.endpoint_url
    host = urlparse(endpoint).hostname or ""
    if not host.endswith("amazonaws.com"):
        properties["s3.endpoint"] = endpoint
        properties["s3.force-virtual-addressing"] = "false"
        credentials = session.get_credentials()
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            properties["s3.access-key-id"] = str(frozen.access_key)
            properties["s3.secret-access-key"] = str(frozen.secret_key)
            if frozen.token:
                properties["s3.session-token"] = frozen.token
    return GlueCatalog("glue", client=glue, **properties)


#: pyarrow's S3 errors (an ``OSError`` naming the AWS error) that no retry will cure.
_TERMINAL_S3 = ("ACCESS_DENIED", "AccessDenied", "NoSuchBucket", "NO_SUCH_BUCKET", "KMS")


@contextmanager
def translated(action: str, resource: str) -> Iterator[None]:
    """Re-raise what the catalog and the file IO raise as the pipeline's errors.

    A commit that lost a race (another writer committed first: Glue refused the stale
    ``VersionId``; PyIceberg retries that itself, on the new snapshot, unless the other
    commit changed what this one read: a ``ValidationException`` under the tables'
    serializable isolation) is transient: the re-run starts from the new snapshot and
    converges.
    """
    try:
        yield
    except (ClientError, BotoCoreError) as e:
        raise translate(e, action, service="glue", resource=resource) from e
    except (CommitFailedException, ValidationException) as e:
        raise TransientError(f"{action}: another commit came first ({e})") from e
    except OSError as e:
        error = TerminalError if any(t in str(e) for t in _TERMINAL_S3) else TransientError
        raise error(f"{action}: {e}") from e


def table_location(bucket: str, name: str) -> str:
    return f"s3://{bucket}/{name}"


def _partition_spec(schema: Any) -> PartitionSpec:
    fields = [
        PartitionField(schema.find_field(c).field_id, 1000 + i, IdentityTransform(), c)
        for i, c in enumerate(PARTITION_COLUMNS)
    ]
    return PartitionSpec(*fields)


def ensure_table(catalog: Catalog, database: str, bucket: str, spec: TableSpec) -> Table:
    """The table, created (with its partition spec and properties) when it does not exist."""
    identifier = (database, spec.name)
    resource = f"{database}.{spec.name}"
    with translated(f"load table {resource}", resource):
        try:
            return _evolved(catalog.load_table(identifier), spec)
        except (NoSuchIcebergTableError, NoSuchPropertyException, ValueError) as e:
            # PyIceberg's ways of saying the Glue table is no Iceberg table (a ValueError
            # when it has no parameters at all).
            raise TerminalError(
                f"{resource} is not an Iceberg table (a Hive table of an earlier release?): "
                f"run `{ADOPT_COMMAND}` once ({e})"
            ) from e
        except NoSuchTableError:
            pass
        # Field ids first: the partition spec names its source columns by id (a converted
        # Arrow schema has none, -1 everywhere, until ids are assigned).
        schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(spec.schema))
        try:
            return catalog.create_table(
                identifier,
                schema,
                location=table_location(bucket, spec.name),
                partition_spec=_partition_spec(schema),
                properties=TABLE_PROPERTIES,
            )
        except TableAlreadyExistsError:  # another run created it first
            return catalog.load_table(identifier)


def _evolved(table: Table, spec: TableSpec) -> Table:
    """The table with every column of ``spec`` (schema evolution, one commit, only when a
    column is missing): a field added to the contract becomes a nullable column; the data
    files written before it are not rewritten, their rows read it as null."""
    present = {field.name for field in table.schema().fields}
    if all(name in present for name in spec.schema.names):
        return table
    with table.update_schema() as update:
        update.union_by_name(spec.schema)
    return table


def day_strings(days: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """The ``year``, ``month``, ``day`` partition values of a ``date32`` column."""
    return {
        "year": pc.strftime(days, format="%Y"),
        "month": pc.strftime(days, format="%m"),
        "day": pc.strftime(days, format="%d"),
    }


def with_partition_columns(rows: pa.Table, spec: TableSpec, day: date | None = None) -> pa.Table:
    """``rows`` in the table's column order with its partition columns: from ``day`` when
    given (all rows of one day), else from the spec's day column."""
    rows = rows.select(spec.columns.names).cast(spec.columns)
    if day is not None:
        values = partition_values(day)
        for name, value in zip(PARTITION_COLUMNS, values, strict=True):
            rows = rows.append_column(name, pa.array([value] * rows.num_rows, pa.string()))
        return rows
    if spec.day_column is None:
        raise ValueError(f"{spec.name}: rows of several days need the day given")
    for name, column in day_strings(rows.column(spec.day_column)).items():
        rows = rows.append_column(name, column)
    return rows


def partition_values(day: date) -> tuple[str, str, str]:
    """The ``year``, ``month``, ``day`` partition values of a day, as strings."""
    return f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"


def day_filter(day: date) -> str:
    """A row filter (PyIceberg's expression syntax) for the rows of one partition day."""
    year, month, dd = partition_values(day)
    return f"(year = '{year}' AND month = '{month}' AND day = '{dd}')"


def days_filter(days: Iterable[date]) -> str:
    """A row filter for the rows of any of ``days`` (false for none)."""
    parts = [day_filter(day) for day in sorted(set(days))]
    return " OR ".join(parts) if parts else "false"


def file_day(partition: Any) -> date:
    """The day of a data file's partition record (``year``, ``month``, ``day`` strings)."""
    return date(int(partition[0]), int(partition[1]), int(partition[2]))


def load_table(catalog: Catalog, database: str, spec: TableSpec) -> Table | None:
    """The table, or ``None`` when no run has created it yet."""
    resource = f"{database}.{spec.name}"
    with translated(f"load table {resource}", resource):
        try:
            return catalog.load_table((database, spec.name))
        except NoSuchTableError:
            return None


def read_rows(
    catalog: Catalog,
    database: str,
    spec: TableSpec,
    row_filter: str = "true",
    columns: tuple[str, ...] | None = None,
) -> pa.Table:
    """The current snapshot's rows matching ``row_filter``, typed as the spec says (PyIceberg
    reads strings as ``large_string``); no rows when the table does not exist yet."""
    names = list(columns) if columns is not None else spec.schema.names
    schema = pa.schema([spec.schema.field(n) for n in names])
    table = load_table(catalog, database, spec)
    if table is None:
        return schema.empty_table()
    resource = f"{database}.{spec.name}"
    with translated(f"read table {resource}", resource):
        rows = table.scan(row_filter=row_filter, selected_fields=tuple(names)).to_arrow()
    return rows.select(names).cast(schema)


def data_key(table: str, day: date, run_id: str) -> str:
    """The key of the one data file a run writes to one partition of ``table``."""
    year, month, dd = partition_values(day)
    return f"{table}/data/year={year}/month={month}/day={dd}/{run_id}.parquet"


def planned_files(table: Table, days: Iterable[date]) -> dict[date, list[str]]:
    """The current snapshot's data files of ``days``, by day (one scan planning).

    A file with delete files attached would need them applied: the tables are
    copy-on-write, so one means another writer changed the properties; refuse.
    """
    name = ".".join(table.name())
    files: dict[date, list[str]] = {}
    with translated(f"plan {name}", name):
        tasks = list(table.scan(row_filter=days_filter(days)).plan_files())
    for task in tasks:
        if task.delete_files:
            raise TerminalError(
                f"{name}: {task.file.file_path} has delete files; the curated tables are "
                "copy-on-write (TABLE_PROPERTIES), merge-on-read is not supported"
            )
        files.setdefault(file_day(task.file.partition), []).append(task.file.file_path)
    return {day: sorted(paths) for day, paths in files.items()}
