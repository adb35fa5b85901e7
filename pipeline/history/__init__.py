"""The history import: daily history (CSV or Parquet) into the curated tables."""

from pipeline.history.importer import ImportReport, quarantine_key, run_import
from pipeline.history.mapping import ColumnMapping

__all__ = ["ColumnMapping", "ImportReport", "quarantine_key", "run_import"]
