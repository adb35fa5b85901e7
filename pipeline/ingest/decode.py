"""KPL de-aggregation: one Kinesis record in, its user records out.

A KPL aggregate is ``MAGIC + protobuf(AggregatedRecord) + md5(protobuf)`` (the format of the
``aws-kinesis-agg`` package, whose protobuf messages and constants this module uses). The
package's own ``iter_deaggregate_records`` hands a corrupt aggregate back unchanged (bad
checksum, unparsable protobuf) and only prints when an index is out of range, so a corrupt
aggregate would reach validation as garbage without a reason. Here every aggregate is
verified and a corrupt one raises ``RejectedRecord("kpl_invalid_aggregate")``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import RejectedRecord

if TYPE_CHECKING:
    from pipeline.ingest.records import StreamRecord

#: The KPL magic prefix (``aws_kinesis_agg.MAGIC``); a JSON text can never start with it.
KPL_MAGIC: Final = b"\xf3\x89\x9a\xc2"
_DIGEST_SIZE: Final = 16


@cache
def _aggregated_record_type() -> Any:
    # Imported on first aggregate only: protobuf costs import time the plain-JSON path
    # never needs. The deaggregator import puts the package directory on sys.path, which
    # its generated messages_pb2 needs to find config_pb2.
    import aws_kinesis_agg.deaggregator  # noqa: F401
    from aws_kinesis_agg import messages_pb2

    return messages_pb2.AggregatedRecord


def is_aggregate(data: bytes) -> bool:
    """Whether ``data`` claims to be a KPL aggregate (starts with the magic prefix)."""
    return data[:4] == KPL_MAGIC


def deaggregate(record: StreamRecord) -> list[StreamRecord]:
    """The user records of ``record``: itself if not aggregated, else one per sub-record.

    Raises :class:`RejectedRecord` (``kpl_invalid_aggregate``) for an aggregate whose
    checksum does not match, whose protobuf does not parse or whose indexes are out of range.
    """
    data = record.data
    if not is_aggregate(data):
        return [record]
    if len(data) <= 4 + _DIGEST_SIZE:
        raise RejectedRecord(
            "kpl_invalid_aggregate", f"aggregate of {len(data)} bytes is too short"
        )
    body, digest = data[4:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.md5(body, usedforsecurity=False).digest() != digest:
        raise RejectedRecord("kpl_invalid_aggregate", "md5 checksum mismatch")
    aggregated = _aggregated_record_type()()
    try:
        aggregated.ParseFromString(body)
    except Exception as e:  # protobuf raises DecodeError, or RuntimeWarning-like errors
        raise RejectedRecord("kpl_invalid_aggregate", f"protobuf: {e}"[:200]) from e
    keys = list(aggregated.partition_key_table)
    out: list[StreamRecord] = []
    for index, user_record in enumerate(aggregated.records):
        if user_record.partition_key_index >= len(keys):
            raise RejectedRecord(
                "kpl_invalid_aggregate",
                f"record {index}: partition key index {user_record.partition_key_index} "
                f"outside a table of {len(keys)}",
            )
        out.append(
            dataclasses.replace(
                record,
                data=bytes(user_record.data),
                partition_key=keys[user_record.partition_key_index],
                sub_sequence=index,
            )
        )
    return out
