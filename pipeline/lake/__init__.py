"""Where things live in the lake and in DynamoDB: the key contracts of ARCHITECTURE.md."""

from pipeline.lake.layout import (
    CURATED_SALES_PREFIX,
    QUARANTINE_PREFIX,
    RAW_SALES_PREFIX,
    curated_partition_prefix,
    forecast_keys,
    hive_prefix,
    quarantine_key,
    raw_key,
)

__all__ = [
    "CURATED_SALES_PREFIX",
    "QUARANTINE_PREFIX",
    "RAW_SALES_PREFIX",
    "curated_partition_prefix",
    "forecast_keys",
    "hive_prefix",
    "quarantine_key",
    "raw_key",
]
