"""Reference data users keep in the curated zone: small tables (locations, planned
promotions) and declarations (the calendar), each a set of objects under one prefix, read
in key order so that a later object's rows come after an earlier one's."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import pyarrow as pa


class ObjectReader(Protocol):
    """What loading needs from the lake's store (:class:`pipeline.compaction.store.LakeStore`)."""

    def list(self, bucket: str, prefix: str) -> Iterable[Any]: ...

    def get(self, bucket: str, key: str) -> bytes | None: ...


def reference_objects(
    store: ObjectReader, bucket: str, prefix: str, suffixes: tuple[str, ...]
) -> Iterator[tuple[str, str, bytes]]:
    """``(s3 url, key, body)`` of each object under ``prefix`` whose key ends with one of
    ``suffixes``, in key order (an object deleted since the listing is passed over)."""
    for obj in store.list(bucket, prefix):
        key: str = obj.key
        if not key.endswith(suffixes):
            continue
        data = store.get(bucket, key)
        if data is None:
            continue
        yield f"s3://{bucket}/{key}", key, data


def read_table(
    source: str, key: str, data: bytes, *, strings: Sequence[str], what: str
) -> pa.Table:
    """A Parquet or CSV object as a table (CSV ``strings`` columns kept as text, empty
    values null); unreadable is a ConfigurationError naming ``what`` and ``source``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if key.endswith(".parquet"):
            return pq.read_table(io.BytesIO(data))
        return pcsv.read_csv(
            io.BytesIO(data),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(strings, pa.string()), strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, OSError) as e:
        raise ConfigurationError(f"cannot read {what} {source}: {e}") from e
