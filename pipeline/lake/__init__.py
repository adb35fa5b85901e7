"""Where things live in the lake and in DynamoDB: the key contracts of ARCHITECTURE.md."""

from pipeline.lake.layout import (
    BY_DATE_INDEX,
    COMPACTION_QUARANTINE_PREFIX,
    CURATED_SALES_PREFIX,
    DATE_SORT_KEY,
    INGEST_QUARANTINE_PREFIX,
    RAW_SALES_PREFIX,
    compaction_quarantine_key,
    curated_partition_prefix,
    forecast_date_sort_key,
    forecast_keys,
    hive_prefix,
    ingest_quarantine_key,
    raw_key,
)

__all__ = [
    "BY_DATE_INDEX",
    "CURATED_SALES_PREFIX",
    "DATE_SORT_KEY",
    "COMPACTION_QUARANTINE_PREFIX",
    "INGEST_QUARANTINE_PREFIX",
    "RAW_SALES_PREFIX",
    "compaction_quarantine_key",
    "curated_partition_prefix",
    "forecast_date_sort_key",
    "forecast_keys",
    "hive_prefix",
    "ingest_quarantine_key",
    "raw_key",
]
