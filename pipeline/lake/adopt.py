"""Adopting a curated zone of an earlier release (Hive layout) into the Iceberg tables, once.

Before the Iceberg tables, each day partition of a curated table was one Parquet object,
``<table>/year=YYYY/month=MM/day=DD/part-00000.parquet``, and the Glue tables were Hive
tables over that layout. The jobs refuse to start on such a lake (:func:`refuse_unadopted`)
rather than silently ignore its history; ``fmcg adopt-hive`` (:func:`adopt`) brings it in:

1. a Glue table of that name that is not an Iceberg table is deleted from the catalog (its
   objects stay where they are);
2. the Iceberg table is created (:func:`~pipeline.lake.tables.ensure_table`);
3. every Hive-layout object is read and appended with its partition's values, and the
   table's property :data:`ADOPTED` records how many objects came in, all in **one**
   commit: a crash leaves the table as it was, and the command can simply run again.

The Hive objects are not deleted: once the rows are checked, delete
``<table>/year=*`` (the Iceberg table's files live under ``<table>/data/``). Run it with the
jobs' triggers paused: a job run in between would refuse to start (step 1 leaves no table),
or, after step 2, find an empty table and refuse again until step 3 commits.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import TYPE_CHECKING, Final

import pyarrow.parquet as pq

from pipeline.compaction.parquet_files import conform
from pipeline.errors import ConfigurationError, TerminalError
from pipeline.lake.tables import (
    ADOPT_COMMAND,
    TABLES,
    TableSpec,
    ensure_table,
    iceberg_catalog,
    translated,
    with_partition_columns,
)

if TYPE_CHECKING:
    import boto3
    from pyiceberg.table import Table

    from pipeline.compaction.store import LakeStore
    from pipeline.job_protocol import Progress

#: The table property an adoption sets: how many Hive objects it brought in.
ADOPTED: Final = "fmcg.hive-objects-adopted"
_HIVE_KEY = re.compile(r"/year=(\d{4})/month=(\d{2})/day=(\d{2})/[^/]+\.parquet$")


def hive_prefix(spec: TableSpec) -> str:
    return f"{spec.name}/year="


def refuse_unadopted(store: LakeStore, bucket: str, table: Table, spec: TableSpec) -> None:
    """Raise when Hive-layout objects of ``spec`` sit in the bucket and were never adopted
    (one LIST of at most one key, and only until the table records an adoption)."""
    if ADOPTED in table.properties:
        return
    if store.any_under(bucket, hive_prefix(spec)):
        raise TerminalError(
            f"s3://{bucket}/{hive_prefix(spec)}... holds {spec.name} partitions of the Hive "
            f"layout that the Iceberg table {'.'.join(table.name())} lacks: run "
            f"`{ADOPT_COMMAND}` once (docs: pipeline/lake/adopt.py)"
        )


def _drop_hive_table(session: boto3.session.Session, database: str, name: str) -> bool:
    glue = session.client("glue")
    try:
        found = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        return False
    if found.get("Parameters", {}).get("table_type", "").upper() == "ICEBERG":
        return False
    glue.delete_table(DatabaseName=database, Name=name)
    return True


def _day(key: str) -> date:
    match = _HIVE_KEY.search("/" + key)
    if match is None:
        raise ConfigurationError(f"{key}: not a Hive-layout partition object")
    return date(int(match[1]), int(match[2]), int(match[3]))


def adopt(
    session: boto3.session.Session,
    store: LakeStore,
    *,
    database: str,
    curated_bucket: str,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Bring every table's Hive-layout objects into its Iceberg table (see the module doc);
    the rows adopted per table (0 for one adopted before or with nothing to adopt)."""
    catalog = iceberg_catalog(session)
    adopted: dict[str, int] = {}
    for spec in TABLES:
        resource = f"{database}.{spec.name}"
        with translated(f"adopt {resource}", resource):
            _drop_hive_table(session, database, spec.name)
        table = ensure_table(catalog, database, curated_bucket, spec)
        if ADOPTED in table.properties:
            adopted[spec.name] = 0
            continue
        listed = store.list(curated_bucket, hive_prefix(spec))
        objects = [o for o in listed if o.key.endswith(".parquet")]
        rows = 0
        with translated(f"adopt {resource}", resource):
            transaction = table.transaction()
            for i, obj in enumerate(objects):
                data = store.get(curated_bucket, obj.key)
                if data is None:
                    continue
                # Older objects may lack a column added since: it reads as null.
                part = conform(pq.read_table(io.BytesIO(data)), spec.columns)
                transaction.append(with_partition_columns(part, spec, _day(obj.key)))
                rows += part.num_rows
                if progress is not None:
                    progress(f"adopt {spec.name}", i + 1, len(objects))
            transaction.set_properties({ADOPTED: str(len(objects))})
            transaction.commit_transaction()
        adopted[spec.name] = rows
    return adopted
