"""A planned Iceberg scan becomes a pyarrow dataset of exactly its data files, or is refused.

No AWS: the planned tasks are built here, the files are local Parquet files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BinaryType,
    DateType,
    ListType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
)

from pipeline.errors import TerminalError
from pipeline.query.iceberg import (
    athena_schema,
    check_column_names,
    object_path,
    planned_dataset,
)

if TYPE_CHECKING:
    from pathlib import Path

#: pyarrow's local filesystem read as a bucket: ``s3://tmp/x`` is ``/tmp/x``.
ROOT = fs.SubTreeFileSystem("/", fs.LocalFileSystem())
SCHEMA = Schema(
    NestedField(1, "sku_id", StringType()),
    NestedField(2, "units", LongType()),
    NestedField(3, "year", StringType()),
    NestedField(4, "day", StringType()),
    schema_id=0,
)
SPEC = PartitionSpec(
    PartitionField(3, 1000, IdentityTransform(), "year"),
    PartitionField(4, 1001, IdentityTransform(), "day"),
    spec_id=0,
)


def data_file(
    path: str,
    year: str,
    day: str,
    content: DataFileContent = DataFileContent.DATA,
    file_format: FileFormat = FileFormat.PARQUET,
) -> DataFile:
    file = DataFile.from_args(
        content=content,
        file_path=path,
        file_format=file_format,
        partition=Record(year, day),
        record_count=1,
        file_size_in_bytes=1,
    )
    file.spec_id = 0
    return file


def _dataset(tasks: list[FileScanTask], schema: Schema = SCHEMA) -> pa.Table:
    dataset = planned_dataset("lake.t", tasks, schema=schema, specs={0: SPEC}, filesystem=ROOT)
    return dataset if isinstance(dataset, pa.Table) else dataset.to_table()


def test_given_files_with_and_without_partition_columns_then_values_come_from_the_partition(
    tmp_path: Path,
) -> None:
    written = tmp_path / "written.parquet"  # as PyIceberg writes: partition columns stored
    pq.write_table(
        pa.table({"sku_id": ["A"], "units": [1], "year": ["2026"], "day": ["01"]}), written
    )
    adopted = tmp_path / "adopted.parquet"  # as the Hive layout stored them: not in the file
    pq.write_table(pa.table({"sku_id": ["B", "C"], "units": [2, 3]}), adopted)

    rows = _dataset(
        [
            FileScanTask(data_file(f"s3:/{written}", "2026", "01")),
            FileScanTask(data_file(f"s3:/{adopted}", "2025", "31")),
        ]
    )

    assert rows.schema == pa.schema(
        [
            ("sku_id", pa.string()),
            ("units", pa.int64()),
            ("year", pa.string()),
            ("day", pa.string()),
        ]
    )
    assert sorted(rows.to_pylist(), key=lambda r: r["sku_id"]) == [
        {"sku_id": "A", "units": 1, "year": "2026", "day": "01"},
        {"sku_id": "B", "units": 2, "year": "2025", "day": "31"},
        {"sku_id": "C", "units": 3, "year": "2025", "day": "31"},
    ]


def test_given_a_file_not_in_the_plan_then_its_rows_are_not_read(tmp_path: Path) -> None:
    kept, dropped = tmp_path / "kept.parquet", tmp_path / "dropped.parquet"
    pq.write_table(pa.table({"sku_id": ["A"], "units": [1]}), kept)
    pq.write_table(pa.table({"sku_id": ["Z"], "units": [9]}), dropped)

    rows = _dataset([FileScanTask(data_file(f"s3:/{kept}", "2026", "01"))])

    assert rows.column("sku_id").to_pylist() == ["A"]


def test_given_no_planned_file_then_an_empty_table_with_the_schema() -> None:
    rows = _dataset([])

    assert rows.num_rows == 0
    assert rows.schema.names == ["sku_id", "units", "year", "day"]


def test_given_a_task_with_delete_files_then_the_table_is_refused() -> None:
    deletes = data_file(
        "s3://cur/t/data/year=2026/day=01/deletes.parquet",
        "2026",
        "01",
        DataFileContent.POSITION_DELETES,
    )
    task = FileScanTask(
        data_file("s3://cur/t/data/year=2026/day=01/a.parquet", "2026", "01"), {deletes}
    )

    with pytest.raises(TerminalError) as error:
        _dataset([task])

    assert str(error.value) == (
        "table lake.t: data file s3://cur/t/data/year=2026/day=01/a.parquet has delete files"
        " (s3://cur/t/data/year=2026/day=01/deletes.parquet); the local engine reads"
        " copy-on-write tables only (their data files are their rows)"
    )


def test_given_a_data_file_not_in_parquet_then_the_table_is_refused() -> None:
    file = data_file(
        "s3://cur/t/data/year=2026/day=01/a.orc", "2026", "01", file_format=FileFormat.ORC
    )

    with pytest.raises(TerminalError) as error:
        _dataset([FileScanTask(file)])

    assert str(error.value) == (
        "table lake.t: data file s3://cur/t/data/year=2026/day=01/a.orc is ORC; the local"
        " engine reads Parquet only"
    )


def test_given_a_non_identity_partition_then_no_column_is_derived_from_it(tmp_path: Path) -> None:
    schema = Schema(
        NestedField(1, "sku_id", StringType()), NestedField(2, "at", TimestampType()), schema_id=0
    )
    spec = PartitionSpec(PartitionField(2, 1000, DayTransform(), "at_day"), spec_id=0)
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"sku_id": ["A"], "at": pa.array([0], pa.timestamp("us"))}), path)
    file = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=f"s3:/{path}",
        file_format=FileFormat.PARQUET,
        partition=Record(0),
        record_count=1,
        file_size_in_bytes=1,
    )
    file.spec_id = 0

    dataset = planned_dataset(
        "lake.t",
        [FileScanTask(file)],
        schema=schema,
        specs={0: spec},
        filesystem=ROOT,
    )

    assert not isinstance(dataset, pa.Table)
    assert dataset.to_table().to_pylist() == [
        {"sku_id": "A", "at": pa.scalar(0, pa.timestamp("us")).as_py()}
    ]


def test_given_iceberg_types_then_the_arrow_schema_has_athenas_types() -> None:
    schema = Schema(
        NestedField(1, "s", StringType()),
        NestedField(2, "b", BinaryType()),
        NestedField(3, "d", DateType()),
        NestedField(4, "ts", TimestampType()),
        NestedField(5, "tz", TimestamptzType()),
        NestedField(6, "l", ListType(7, StringType(), element_required=False)),
        NestedField(8, "n", LongType(), required=True),
    )

    arrow = athena_schema(schema)

    assert [(f.name, f.type, f.nullable) for f in arrow] == [
        ("s", pa.string(), True),
        ("b", pa.binary(), True),
        ("d", pa.date32(), True),
        ("ts", pa.timestamp("us"), True),
        ("tz", pa.timestamp("us", tz="UTC"), True),
        ("l", pa.list_(pa.field("element", pa.string())), True),
        ("n", pa.int64(), False),
    ]
    assert all(not f.metadata for f in arrow)


def test_given_a_renamed_column_then_the_table_is_refused() -> None:
    old = Schema(NestedField(1, "qty", LongType()), schema_id=0)
    current = Schema(NestedField(1, "quantity", LongType()), schema_id=1)

    with pytest.raises(TerminalError) as error:
        check_column_names("lake.sales", current, [old, current])

    assert str(error.value) == (
        "table lake.sales: column 'qty' was renamed to 'quantity' (schema 0); the local engine"
        " reads columns by name"
    )


def test_given_a_column_dropped_and_added_again_then_the_table_is_refused() -> None:
    old = Schema(NestedField(1, "price", LongType()), schema_id=0)
    current = Schema(NestedField(2, "price", LongType()), schema_id=2)

    with pytest.raises(TerminalError) as error:
        check_column_names("lake.sales", current, [old, current])

    assert str(error.value) == (
        "table lake.sales: column 'price' was dropped and added again (field 1, now 2); the"
        " local engine reads columns by name"
    )


def test_given_an_added_or_dropped_column_then_the_names_still_agree() -> None:
    old = Schema(NestedField(1, "a", LongType()), NestedField(2, "gone", LongType()), schema_id=0)
    current = Schema(
        NestedField(1, "a", LongType()), NestedField(3, "new", LongType()), schema_id=1
    )

    check_column_names("lake.t", current, [old, current])


@pytest.mark.parametrize(
    ("url", "path"),
    [("s3://b/t/data/f.parquet", "b/t/data/f.parquet"), ("s3a://b/f.parquet", "b/f.parquet")],
)
def test_given_an_s3_url_then_the_pyarrow_path(url: str, path: str) -> None:
    assert object_path(url) == path


def test_given_a_data_file_off_s3_then_refused() -> None:
    with pytest.raises(TerminalError) as error:
        object_path("file:///tmp/f.parquet")

    assert str(error.value) == (
        "data file file:///tmp/f.parquet is not on S3 (the local engine reads s3:// only)"
    )
