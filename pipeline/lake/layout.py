"""Pure key builders for the raw zone, the quarantine, the curated zone and Forecasts.

Raw keys are deterministic (shard id, first and last sequence number of the batch, and the
arrival date of the batch's first record), so a retried batch overwrites its own object
instead of adding a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from datetime import date, datetime

RAW_SALES_PREFIX: Final = "sales/"
QUARANTINE_PREFIX: Final = "quarantine/"
CURATED_SALES_PREFIX: Final = "sales/"


def _day_path(day: date) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def raw_key(shard_id: str, first_sequence: str, last_sequence: str, arrival: datetime) -> str:
    """``sales/YYYY/MM/DD/<shardId>-<firstSeq>-<lastSeq>.json`` by arrival date."""
    day = _day_path(arrival.date())
    return f"{RAW_SALES_PREFIX}{day}/{shard_id}-{first_sequence}-{last_sequence}.json"


def quarantine_key(
    shard_id: str, first_sequence: str, last_sequence: str, arrival: datetime
) -> str:
    """The quarantine object of one batch; deterministic for the same reason as raw keys."""
    return (
        f"{QUARANTINE_PREFIX}{_day_path(arrival.date())}/"
        f"{shard_id}-{first_sequence}-{last_sequence}.json"
    )


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
