"""The files of a history source: a local file or folder, or an ``s3://`` object or prefix.

CSV is read with every mapped column as text (so one bad value refuses one row, not the
file) and streamed in blocks; Parquet keeps its types and is read a row group at a time.
Either way a batch is a bounded number of rows, and each batch says how far through the
source's bytes the read is (the progress bar's measure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import csv, fs

from pipeline.errors import InvalidInputError, TransientError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import boto3

    from pipeline.history.mapping import ColumnMapping

Format = Literal["csv", "parquet"]
FORMATS: Final = ("csv", "parquet")
_SUFFIXES: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: Rows per batch: large enough that Arrow's per-call costs vanish, small enough that
#: memory follows a few batches, not the source.
BATCH_ROWS: Final = 128 * 1024
#: CSV block size (bytes read at once; a batch is one block's rows).
CSV_BLOCK_BYTES: Final = 8 << 20


@dataclass(frozen=True)
class Malformed:
    """A CSV line that does not split into the header's fields (skipped, quarantined)."""

    line: int
    detail: str
    text: str


@dataclass(frozen=True)
class Batch:
    """Some rows of a source file, how far through its bytes they reach, and the malformed
    lines met on the way (CSV)."""

    rows: pa.Table
    position: int
    malformed: list[Malformed] = field(default_factory=list)


@dataclass(frozen=True)
class SourceFile:
    """One file of the source: its path in ``filesystem``, its size and its format."""

    path: str
    size: int
    format: Format

    @property
    def uri(self) -> str:
        return self.path


@dataclass(frozen=True)
class Source:
    """The files a source names, in path order, and where they are."""

    name: str
    filesystem: fs.FileSystem
    files: list[SourceFile]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file_uri(self, file: SourceFile) -> str:
        return f"s3://{file.path}" if self.name.startswith("s3://") else file.path


def _format_of(path: str, given: Format | None) -> Format | None:
    if given is not None:
        return given
    lower = path.lower()
    for suffix, kind in _SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def open_source(
    name: str, *, session: boto3.session.Session | None = None, file_format: Format | None = None
) -> Source:
    """The files of ``name`` (a file, or every CSV/Parquet file under a folder or prefix).

    A folder's files of another kind (a README, ``_SUCCESS``) are skipped; a source with
    none is refused, naming it.
    """
    if file_format is not None and file_format not in FORMATS:
        raise InvalidInputError(
            f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}"
        )
    if name.startswith("s3://"):
        if session is None:
            raise InvalidInputError(f"{name}: reading S3 needs a session")
        from pipeline.query.duckdb_engine import s3_filesystem

        filesystem: fs.FileSystem = s3_filesystem(session)
        path = name.removeprefix("s3://").rstrip("/")
    else:
        filesystem = fs.LocalFileSystem()
        path = str(Path(name).expanduser().resolve())
    try:
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.NotFound:
            raise InvalidInputError(f"{name}: no such file or folder")
        if info.type == fs.FileType.File:
            infos = [info]
        else:
            infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
    except OSError as e:
        raise TransientError(f"list {name}: {e}") from e
    files = []
    for item in sorted(infos, key=lambda i: i.path):
        if item.type != fs.FileType.File or Path(item.path).name.startswith(("_", ".")):
            continue
        kind = _format_of(item.path, file_format)
        if kind is None:
            if info.type == fs.FileType.File:
                raise InvalidInputError(
                    f"{name}: not a .csv or .parquet file (say which with --format)"
                )
            continue
        files.append(SourceFile(item.path, int(item.size or 0), kind))
    if not files:
        raise InvalidInputError(f"{name}: no CSV or Parquet files there")
    return Source(name, filesystem, files)


def batches(source: Source, file: SourceFile, mapping: ColumnMapping) -> Iterator[Batch]:
    """The mapped columns of ``file`` in batches, each with the bytes of the file read so far
    (an estimate for Parquet: its share of the rows)."""
    uri = source.file_uri(file)
    try:
        if file.format == "parquet":
            yield from _parquet_batches(source.filesystem, file, mapping, uri)
        else:
            yield from _csv_batches(source.filesystem, file, mapping, uri)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowKeyError) as e:
        raise InvalidInputError(f"{uri}: {e}") from e
    except OSError as e:
        raise TransientError(f"read {uri}: {e}") from e


def _parquet_batches(
    filesystem: fs.FileSystem, file: SourceFile, mapping: ColumnMapping, uri: str
) -> Iterator[Batch]:
    with filesystem.open_input_file(file.path) as handle:
        parquet = pq.ParquetFile(handle)
        mapping.check_columns(parquet.schema_arrow.names, uri)
        total = max(parquet.metadata.num_rows, 1)
        done = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=mapping.source_columns):
            done += batch.num_rows
            yield Batch(pa.Table.from_batches([batch]), file.size * done // total)


class _Counted:
    """A readable stream that counts the bytes read through it (the CSV's progress)."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self.read_bytes = 0
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._stream.read(n)
        self.read_bytes += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _csv_batches(
    filesystem: fs.FileSystem, file: SourceFile, mapping: ColumnMapping, uri: str
) -> Iterator[Batch]:
    compression = "gzip" if file.path.lower().endswith(".gz") else None
    with filesystem.open_input_stream(file.path, compression=compression) as raw:
        counted = _Counted(raw)
        text = {name: pa.string() for name in mapping.source_columns}

        def malformed(row: csv.InvalidRow) -> str:
            # A line with too few or too many fields: quarantined, the file goes on.
            detail = f"{row.actual_columns} fields where the header has {row.expected_columns}"
            found.append(Malformed(row.number, detail, row.text))
            return "skip"

        found: list[Malformed] = []
        try:
            reader = csv.open_csv(
                pa.PythonFile(counted, mode="r"),
                read_options=csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=True),
                parse_options=csv.ParseOptions(invalid_row_handler=malformed),
                convert_options=csv.ConvertOptions(
                    column_types=text,
                    include_columns=mapping.source_columns,
                    strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowKeyError) as e:
            if "include_columns" not in str(e):
                raise
            mapping.check_columns(_header(filesystem, file.path, compression), uri)
            raise
        for batch in reader:
            position = min(counted.read_bytes, file.size)
            for start in range(0, batch.num_rows, BATCH_ROWS):
                yield Batch(
                    pa.Table.from_batches([batch.slice(start, BATCH_ROWS)]), position, found
                )
                found = []
        if found:
            yield Batch(pa.table({c: pa.array([], pa.string()) for c in text}), file.size, found)


def _header(filesystem: fs.FileSystem, path: str, compression: str | None) -> list[str]:
    """The column names of a CSV file's header line."""
    import csv as text_csv
    import io

    with filesystem.open_input_stream(path, compression=compression) as stream:
        head = stream.read(1 << 16).decode("utf-8", errors="replace")
    return next(text_csv.reader(io.StringIO(head)), [])
