"""An Iceberg table's current snapshot as a pyarrow dataset, for the local SQL engine.

PyIceberg plans the scan (the snapshot's manifests: which data files hold its rows and the
partition of each); the dataset is exactly those files, read through pyarrow's S3 client,
each with its partition as an expression. DuckDB's filters reach the dataset, and pyarrow
skips a file whose partition contradicts them without fetching it, so a query bounded by
``year``/``month``/``day`` reads only its days' data files. Planning itself reads every
manifest of the snapshot, whatever the query: their number follows the table's live data,
not the runs ever committed, because appends merge manifests
(``commit.manifest-merge.enabled`` in :mod:`pipeline.lake.tables`): after 250 one-day
commits, 52 manifests and a one-day query in 0.8 s on the emulator, against 250 manifests
and 2.4 s without merging (``benchmarks/query_planning.py``; the manifests' entries follow
the live data files, which maintenance packs). Pruning by partition happens after planning
(pyarrow skips the files), not in it: DuckDB does not say which table a pushed-down filter
belongs to. Only the tables a query names are planned
(:func:`pipeline.query.duckdb_engine.referenced_tables`).

What the dataset cannot do, it refuses rather than return other rows than the table holds
(and a data file in another format than Parquet):

- **Delete files** (merge-on-read row deletes or updates): the dataset would show the
  deleted rows. The curated tables are copy-on-write (:mod:`pipeline.lake.tables`), so a
  snapshot's data files are its rows; a table written otherwise is refused by name.
- **A renamed or replaced column**: Parquet columns are matched by name here, by field id in
  Iceberg. As long as every name has meant one field id in each of the table's schemas, the
  two agree (a column added later reads null in older files, as Iceberg says); otherwise
  the table is refused.

Column types are Athena's (``string``, not the ``large_string`` PyIceberg reads).
Partition columns of identity partitions come from the file's partition when a file does
not store them (files adopted with ``add_files`` from the Hive layout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.dataset as ds
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import FileFormat
from pyiceberg.schema import index_name_by_id
from pyiceberg.transforms import IdentityTransform

from pipeline.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pyarrow import fs
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import FileScanTask, Table

#: URL schemes of data file paths (Iceberg's S3FileIO, Hadoop's S3A and the legacy S3N).
_SCHEMES: Final = ("s3://", "s3a://", "s3n://")


def snapshot_dataset(table: Table, name: str, filesystem: fs.FileSystem) -> ds.Dataset | pa.Table:
    """The rows of ``table``'s current snapshot as a dataset (see the module docstring); an
    empty table before the first commit."""
    schema = table.schema()
    check_column_names(name, schema, table.schemas().values())
    tasks = table.scan().plan_files()
    return planned_dataset(name, tasks, schema=schema, specs=table.specs(), filesystem=filesystem)


def planned_dataset(
    name: str,
    tasks: Iterable[FileScanTask],
    *,
    schema: Schema,
    specs: Mapping[int, PartitionSpec],
    filesystem: fs.FileSystem,
) -> ds.Dataset | pa.Table:
    """The data files of planned scan ``tasks`` as one dataset with the Athena types of
    ``schema`` (see the module docstring); :class:`TerminalError` when a task carries
    delete files or a file is not Parquet."""
    arrow = athena_schema(schema)
    paths: list[str] = []
    partitions: list[ds.Expression] = []
    for task in tasks:
        if task.delete_files:
            deletes = ", ".join(sorted(d.file_path for d in task.delete_files))
            raise TerminalError(
                f"table {name}: data file {task.file.file_path} has delete files ({deletes});"
                " the local engine reads copy-on-write tables only (their data files are"
                " their rows)"
            )
        if task.file.file_format != FileFormat.PARQUET:
            raise TerminalError(
                f"table {name}: data file {task.file.file_path} is"
                f" {task.file.file_format.value}; the local engine reads Parquet only"
            )
        paths.append(object_path(task.file.file_path))
        partitions.append(
            partition_expression(specs[task.file.spec_id], task.file.partition, schema, arrow)
        )
    if not paths:
        return arrow.empty_table()
    return ds.FileSystemDataset.from_paths(
        paths,
        schema=arrow,
        format=ds.ParquetFileFormat(),
        filesystem=filesystem,
        partitions=partitions,
    )


def athena_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema of an Iceberg schema, with the types Athena shows: ``string`` and
    ``binary`` rather than PyIceberg's large variants, no field id metadata."""
    arrow = schema_to_pyarrow(schema, include_field_ids=False)
    return pa.schema([field.with_type(_small(field.type)).remove_metadata() for field in arrow])


def _small(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_large_list(dtype) or pa.types.is_list(dtype):
        return pa.list_(dtype.value_field.with_type(_small(dtype.value_type)))
    if pa.types.is_map(dtype):
        return pa.map_(
            dtype.key_field.with_type(_small(dtype.key_type)),
            dtype.item_field.with_type(_small(dtype.item_type)),
        )
    if pa.types.is_struct(dtype):
        return pa.struct([f.with_type(_small(f.type)) for f in dtype])
    return dtype


def partition_expression(
    spec: PartitionSpec, partition: object, schema: Schema, arrow: pa.Schema
) -> ds.Expression:
    """What a data file's partition says of its rows: ``column == value`` for each identity
    partition field whose source column is a top-level column (other transforms, such as
    ``day(ts)``, say nothing a column shows)."""
    expression = ds.scalar(True)
    for position, field in enumerate(spec.fields):
        if not isinstance(field.transform, IdentityTransform):
            continue
        column = schema.find_column_name(field.source_id)
        if column is None or column not in arrow.names:
            continue
        value = partition[position]  # type: ignore[index]
        target = ds.field(column)
        expression = expression & (
            target.is_null()
            if value is None
            else target == pa.scalar(value, arrow.field(column).type)
        )
    return expression


def object_path(url: str) -> str:
    """``bucket/key`` of a data file's ``s3://bucket/key`` (pyarrow's S3 path)."""
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return url.removeprefix(scheme)
    raise TerminalError(f"data file {url} is not on S3 (the local engine reads s3:// only)")


def check_column_names(name: str, current: Schema, schemas: Iterable[Schema]) -> None:
    """:class:`TerminalError` unless every column name has meant the same field in every
    schema of the table as in ``current`` (files are read by name; see the module)."""
    names = index_name_by_id(current)
    ids = {column: field_id for field_id, column in names.items()}
    for schema in schemas:
        for field_id, column in index_name_by_id(schema).items():
            now = names.get(field_id)
            if now is not None and now != column:
                raise TerminalError(
                    f"table {name}: column {column!r} was renamed to {now!r} (schema"
                    f" {schema.schema_id}); the local engine reads columns by name"
                )
            if column in ids and ids[column] != field_id:
                raise TerminalError(
                    f"table {name}: column {column!r} was dropped and added again (field"
                    f" {field_id}, now {ids[column]}); the local engine reads columns by name"
                )
