"""Glue job: forecast demand for every SKU x location (wiring only).

The job protocol (:mod:`pipeline.job_protocol`) around :func:`run_forecast`, which writes
the forecasts to DynamoDB and the curated archive and puts ForecastBias into CloudWatch.
``--as_of yyyy-mm-dd`` backfills the forecast a run on that day would have made (into the
archive; ``--publish true`` also writes it to the forecast table, never over a newer one);
``--default_time_zone`` (and country, subdivision) place the locations the curated
locations table does not list: only days ended at a location are actuals. The forecast
items carry Glue's ``--JOB_RUN_ID`` as their ``run_id`` (a new id when it is absent).
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

from pipeline.errors import ConfigurationError
from pipeline.forecasting.job import run_forecast
from pipeline.job_protocol import Progress, engine, run_job
from pipeline.lake.locations import LOCATION_ARGUMENTS, LocationDefaults

REQUIRED = ("curated_bucket", "database", "forecast_table")
#: ``JOB_RUN_ID`` is Glue's own (every run gets one): the items of the run carry it.
OPTIONAL = ("horizon_days", "as_of", "publish", "engine", "JOB_RUN_ID", *LOCATION_ARGUMENTS)


def _as_of(options: dict[str, str]) -> date | None:
    if "as_of" not in options:
        return None
    try:
        return date.fromisoformat(options["as_of"])
    except ValueError:
        raise ConfigurationError(
            f"--as_of must be a date (yyyy-mm-dd), got {options['as_of']!r}"
        ) from None


def _horizon(options: dict[str, str]) -> int:
    value = options.get("horizon_days", "28")
    if not value.isdigit() or not 1 <= int(value) <= 366:
        raise ConfigurationError(f"--horizon_days must be a whole number of days, got {value!r}")
    return int(value)


def _publish(options: dict[str, str]) -> bool:
    value = options.get("publish", "false").lower()
    if value not in {"true", "false"}:
        raise ConfigurationError(f"--publish must be true or false, got {options['publish']!r}")
    if value == "true" and "as_of" not in options:
        raise ConfigurationError("--publish true needs --as_of: a regular run always publishes")
    return value == "true"


def forecast(options: dict[str, str], progress: Progress) -> dict[str, Any]:
    """One forecast run, on the ``--engine`` it names; its report."""
    arguments: dict[str, Any] = {
        "curated_bucket": options["curated_bucket"],
        "database": options["database"],
        "forecast_table": options["forecast_table"],
        "horizon_days": _horizon(options),
        "as_of": _as_of(options),
        "progress": progress,
        "location_defaults": LocationDefaults.from_job_arguments(options),
        "run_id": options.get("JOB_RUN_ID"),
    }
    if _publish(options):
        if engine(options) == "spark":
            raise ConfigurationError("--publish runs on --engine single only (not yet on spark)")
        return run_forecast(**arguments, publish=True).as_dict()
    if engine(options) == "spark":
        from pipeline.spark.forecasting import run_forecast_spark
        from pipeline.spark.session import spark_session

        return run_forecast_spark(spark=spark_session("forecast-demand"), **arguments).as_dict()
    return run_forecast(**arguments).as_dict()


def main(argv: list[str]) -> int:
    """Run the job with ``argv`` (without the script name); the exit status."""
    return run_job(argv, forecast, required=REQUIRED, optional=OPTIONAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
