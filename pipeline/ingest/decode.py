"""KPL de-aggregation: one Kinesis record in, its user records out.

A KPL aggregate is ``MAGIC + protobuf(AggregatedRecord) + md5(protobuf)`` (the format of the
``aws-kinesis-agg`` package, whose protobuf messages and constants this module uses). The
package's own ``iter_deaggregate_records`` hands a corrupt aggregate back unchanged (bad
checksum, unparsable protobuf) and only prints when an index is out of range, so a corrupt
aggregate would reach validation as garbage without a reason. Here every aggregate is
verified and a corrupt one raises ``RejectedRecord("kpl_invalid_aggregate")``.

An aggregate also holds at most :data:`MAX_USER_RECORDS` user records: protobuf lets a
1 MiB record carry a quarter of a million empty ones, each of which would otherwise become
an object, a validation and a quarantine line (one such aggregate once made a 42 MB
quarantine object). Past the cap it raises :class:`TooManyUserRecords` before building any.
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
#: User records one aggregate may hold. The KPL itself caps an aggregate by size only
#: (``AggregationMaxSize``, 50 KiB by default, at most the 1 MiB of a Kinesis record; its
#: ``AggregationMaxCount`` defaults to 2**32 - 1). The smallest valid sales event is 116
#: bytes of JSON and 122 inside an aggregate, so a 1 MiB aggregate of valid events holds at
#: most 8,594 of them (tests/unit/ingest/test_ingest_aggregates.py checks that sum):
#: 10,000 leaves every real aggregate through, and bounds what a forged one costs.
MAX_USER_RECORDS: Final = 10_000


class TooManyUserRecords(RejectedRecord):
    """An aggregate with more user records than :data:`MAX_USER_RECORDS`; it is
    quarantined whole, once, with ``user_records`` counted."""

    def __init__(self, user_records: int, limit: int) -> None:
        super().__init__(
            "kpl_too_many_records", f"{user_records} user records > {limit} per aggregate"
        )
        self.user_records = user_records


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


def user_records(
    data: bytes, *, max_user_records: int | None = MAX_USER_RECORDS
) -> list[tuple[str, bytes]]:
    """The ``(partition key, data)`` of each user record of the aggregate ``data``.

    Raises :class:`RejectedRecord` (``kpl_invalid_aggregate``) for an aggregate whose
    checksum does not match, whose protobuf does not parse or whose indexes are out of
    range, and :class:`TooManyUserRecords` past ``max_user_records`` (None: no cap, for an
    operator replaying a quarantined aggregate by hand).
    """
    if len(data) <= 4 + _DIGEST_SIZE:
        raise RejectedRecord(
            "kpl_invalid_aggregate", f"aggregate of {len(data)} bytes is too short"
        )
    body, digest = data[4:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.md5(body, usedforsecurity=False).digest() != digest:
        raise RejectedRecord("kpl_invalid_aggregate", "md5 checksum mismatch")
    aggregated = _aggregated_record_type()()
    try:
        # upb parses into its own arena: a few MB even for a quarter of a million records,
        # and the count is then known before any Python object is built for them.
        aggregated.ParseFromString(body)
    except Exception as e:  # protobuf raises DecodeError, or RuntimeWarning-like errors
        raise RejectedRecord("kpl_invalid_aggregate", f"protobuf: {e}"[:200]) from e
    count = len(aggregated.records)
    if max_user_records is not None and count > max_user_records:
        raise TooManyUserRecords(count, max_user_records)
    keys = list(aggregated.partition_key_table)
    out: list[tuple[str, bytes]] = []
    for index, user_record in enumerate(aggregated.records):
        if user_record.partition_key_index >= len(keys):
            raise RejectedRecord(
                "kpl_invalid_aggregate",
                f"record {index}: partition key index {user_record.partition_key_index} "
                f"outside a table of {len(keys)}",
            )
        out.append((keys[user_record.partition_key_index], bytes(user_record.data)))
    return out


def deaggregate(
    record: StreamRecord, *, max_user_records: int | None = MAX_USER_RECORDS
) -> list[StreamRecord]:
    """The user records of ``record``: itself if not aggregated, else one per sub-record.

    Raises as :func:`user_records` does.
    """
    if not is_aggregate(record.data):
        return [record]
    return [
        dataclasses.replace(record, data=data, partition_key=key, sub_sequence=index)
        for index, (key, data) in enumerate(
            user_records(record.data, max_user_records=max_user_records)
        )
    ]
