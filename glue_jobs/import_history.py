"""Glue job: import daily history (CSV or Parquet) into the curated tables.

Wiring only: the job protocol (:mod:`pipeline.job_protocol`), a boto3 session and the core
in :mod:`pipeline.history`. ``--source`` is an ``s3://`` object or prefix (locally, where
``fmcg import`` runs the job, also a local file or folder); ``--sku_id``, ``--location_id``,
``--date`` and ``--units`` name the source's columns, ``--price``, ``--promotion`` and
``--end_of_day_stock`` the optional ones; ``--date_format`` (``strptime`` codes) reads
dates written as text; ``--format`` (csv or parquet) when the file names do not say.
``--engine`` ``single`` (one process, PyIceberg) or ``spark`` (the job's Spark session,
:mod:`pipeline.spark.history`): the same tables, quarantine and report either way.
"""

from __future__ import annotations

import sys
from typing import Any

import boto3

from pipeline.errors import ConfigurationError, InvalidInputError
from pipeline.history import ColumnMapping, run_import
from pipeline.history.source import FORMATS
from pipeline.job_protocol import Progress, engine, run_job
from pipeline.lake.locations import LOCATION_ARGUMENTS, LocationDefaults

REQUIRED = ("source", "curated_bucket", "database", "sku_id", "location_id", "date", "units")
OPTIONAL = (
    "engine",
    "format",
    "price",
    "promotion",
    "end_of_day_stock",
    "date_format",
    *LOCATION_ARGUMENTS,
)


def import_history(options: dict[str, str], progress: Progress) -> dict[str, Any]:
    """One import of ``--source``, on the ``--engine`` it names; its report."""
    chosen = engine(options)
    file_format = options.get("format") or None
    if file_format is not None and file_format not in FORMATS:
        raise ConfigurationError(
            f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}"
        )
    try:
        arguments: dict[str, Any] = {
            "curated_bucket": options["curated_bucket"],
            "database": options["database"],
            "session": boto3.session.Session(),
            "progress": progress,
            "location_defaults": LocationDefaults.from_job_arguments(options),
            "file_format": file_format,
        }
        mapping = ColumnMapping.from_options(options)
        if chosen == "spark":
            from pipeline.spark.history import run_import_spark
            from pipeline.spark.session import spark_session

            spark = spark_session("import-history")
            report = run_import_spark(options["source"], mapping, spark=spark, **arguments)
        else:
            report = run_import(options["source"], mapping, **arguments)
    except InvalidInputError as e:
        # The source or the mapping the arguments name cannot be used: a usage error, one
        # line (a missing file, a mapped column the source lacks), not a traceback.
        raise ConfigurationError(str(e)) from e
    return report.as_dict()


def main(argv: list[str]) -> int:
    """Run the job with ``argv`` (without the script name); the exit status."""
    return run_job(argv, import_history, required=REQUIRED, optional=OPTIONAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
