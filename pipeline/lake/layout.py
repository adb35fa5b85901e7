"""Pure key builders for the raw zone, the two quarantines, the curated zone and Forecasts.

Two quarantines: ingest's, in the raw bucket, holds the records a stream batch rejected
(:func:`ingest_quarantine_key`); compaction's, in the curated bucket, holds the lines of a
raw object the compaction job could not parse (:func:`compaction_quarantine_key`).

Raw keys are deterministic (shard id, first and last sequence number of the batch, and the
arrival date of the batch's first record), so a retried batch overwrites its own object
instead of adding a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from datetime import date, datetime

RAW_SALES_PREFIX: Final = "sales/"
#: Ingest's quarantine, in the raw bucket.
INGEST_QUARANTINE_PREFIX: Final = "quarantine/"
#: Compaction's quarantine, in the curated bucket.
COMPACTION_QUARANTINE_PREFIX: Final = "quarantine/compaction/"
CURATED_SALES_PREFIX: Final = "sales/"


def _day_path(day: date) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def raw_key(shard_id: str, first_sequence: str, last_sequence: str, arrival: datetime) -> str:
    """``sales/YYYY/MM/DD/<shardId>-<firstSeq>-<lastSeq>.json`` by arrival date."""
    day = _day_path(arrival.date())
    return f"{RAW_SALES_PREFIX}{day}/{shard_id}-{first_sequence}-{last_sequence}.json"


def ingest_quarantine_key(
    shard_id: str, first_sequence: str, last_sequence: str, arrival: datetime
) -> str:
    """The quarantine object of one batch; deterministic for the same reason as raw keys."""
    return (
        f"{INGEST_QUARANTINE_PREFIX}{_day_path(arrival.date())}/"
        f"{shard_id}-{first_sequence}-{last_sequence}.json"
    )


def compaction_quarantine_key(raw_key: str) -> str:
    """Where the rejected lines of one raw object go (deterministic: re-runs overwrite)."""
    return COMPACTION_QUARANTINE_PREFIX + raw_key.removesuffix(".json") + ".ndjson"


def hive_prefix(values: dict[str, str]) -> str:
    """``k1=v1/k2=v2/`` in the given order (Hive-style partition path)."""
    return "".join(f"{k}={v}/" for k, v in values.items())


def curated_partition_prefix(day: date, table: str = "sales") -> str:
    """``<table>/year=YYYY/month=MM/day=DD/`` by event date."""
    return f"{table}/" + hive_prefix(
        {"year": f"{day.year:04d}", "month": f"{day.month:02d}", "day": f"{day.day:02d}"}
    )


def forecast_keys(sku_id: str, location_id: str, day: date) -> tuple[str, str]:
    """The Forecasts item keys: ``("SKU#<sku>", "LOC#<loc>#DATE#<yyyy-mm-dd>")``."""
    return f"SKU#{sku_id}", f"LOC#{location_id}#DATE#{day.isoformat()}"


#: The Forecasts index that reads one SKU's forecasts of every location by date, and the
#: attribute it sorts on (``PK`` is its partition key too).
BY_DATE_INDEX: Final = "ByDate"
DATE_SORT_KEY: Final = "DateSK"


def forecast_date_sort_key(location_id: str, day: date) -> str:
    """The ``ByDate`` sort key of a Forecasts item: ``DATE#<yyyy-mm-dd>#LOC#<loc>``."""
    return f"DATE#{day.isoformat()}#LOC#{location_id}"
