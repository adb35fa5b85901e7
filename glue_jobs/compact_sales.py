"""Glue job: compact the raw zone into the curated zone.

Wiring only: the job protocol (:mod:`pipeline.job_protocol`), a boto3 session (the job's
role on AWS, ``AWS_ENDPOINT_URL`` locally) and the core in :mod:`pipeline.compaction`.
The ``pipeline`` package comes from the job's ``--additional-python-modules`` (the
project's wheel, see infra/template.yaml). ``--default_time_zone``, ``--default_country``
and ``--default_subdivision`` place the locations the curated locations table does not
list (:mod:`pipeline.lake.locations`).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import boto3

from pipeline.compaction import run_compaction
from pipeline.compaction.lateness import FUTURE_DAYS, HORIZON_DAYS, Lateness
from pipeline.compaction.metrics import publish_run_counts
from pipeline.errors import ConfigurationError
from pipeline.job_protocol import Progress, engine, run_job
from pipeline.lake.locations import LOCATION_ARGUMENTS, LocationDefaults
from pipeline.lake.maintenance import RETENTION_DAYS, maintain

REQUIRED = ("raw_bucket", "curated_bucket", "database")
MAINTENANCE = ("off", "after", "only")
DISCOVERY = ("queue", "listing")
#: ``--raw_queue_url`` is the raw zone's event queue the run drains to find new raw objects
#: (:mod:`pipeline.compaction.discovery`); ``--raw_discovery listing`` (the sweep) lists the
#: raw zone's open window instead, for objects the queue never announced;
#: ``--max_raw_objects`` bounds one run (a backlog drains over runs); ``--raw_open_days``
#: is how long an arrival day may still receive raw objects (the stream's retention + 1);
#: ``--lateness_horizon_days`` / ``--future_days`` bound how far an event may be from its
#: arrival; ``--backfill`` (comma-separated compaction quarantine keys) merges their
#: held-aside events instead of compacting new raw objects; ``--maintenance`` ``after``
#: packs small files and expires snapshots after the run, ``only`` instead of it
#: (:mod:`pipeline.lake.maintenance`; ``--snapshot_retention_days``), for accounts without
#: Glue's table optimizers.
OPTIONAL = (
    "engine",
    "maintenance",
    "snapshot_retention_days",
    "max_raw_objects",
    "raw_open_days",
    "raw_queue_url",
    "raw_discovery",
    "lateness_horizon_days",
    "future_days",
    "backfill",
    *LOCATION_ARGUMENTS,
)


def compact(options: dict[str, str], progress: Progress) -> dict[str, Any]:
    """One compaction run, on the ``--engine`` it names, and the ``--maintenance`` asked for;
    its report."""
    maintenance = options.get("maintenance") or "off"
    if maintenance not in MAINTENANCE:
        raise ConfigurationError(
            f"--maintenance must be one of {', '.join(MAINTENANCE)}, not {maintenance!r}"
        )
    report = {} if maintenance == "only" else _compact(options, progress)
    if maintenance != "off":
        retention = _whole_number(options, "snapshot_retention_days") or RETENTION_DAYS
        done = maintain(
            boto3.session.Session(),
            database=options["database"],
            retention_days=retention,
            progress=progress,
        )
        report.update({f"maintenance_{k}": v for k, v in done.as_dict().items()})
    return report


def _compact(options: dict[str, str], progress: Progress) -> dict[str, Any]:
    session = boto3.session.Session()
    bounds = _bounds(options)
    lateness = Lateness(
        bounds.pop("horizon_days", HORIZON_DAYS), bounds.pop("future_days", FUTURE_DAYS)
    )
    arguments = {
        "raw_bucket": options["raw_bucket"],
        "curated_bucket": options["curated_bucket"],
        "database": options["database"],
        "session": session,
        "progress": progress,
        "location_defaults": LocationDefaults.from_job_arguments(options),
        "lateness": lateness,
        **bounds,
    }
    backfill = [k.strip() for k in options.get("backfill", "").split(",") if k.strip()]
    if backfill:
        # Bounded by the objects given, so one process does it on either engine.
        return run_compaction(**arguments, backfill=backfill).as_dict()
    queue = _raw_queue(options)
    sqs = session.client("sqs") if queue else None
    if engine(options) == "spark":
        from pipeline.spark.compaction import run_compaction_spark
        from pipeline.spark.session import spark_session

        report = run_compaction_spark(
            spark=spark_session("compact-sales"), **arguments, raw_queue_url=queue, sqs_client=sqs
        )
    else:
        report = run_compaction(**arguments, raw_queue_url=queue, sqs_client=sqs)
    publish_run_counts(
        session.client("cloudwatch"),
        held_aside=report.held_aside,
        unreadable=report.unreadable_objects,
        timestamp=datetime.now(UTC),
    )
    return report.as_dict()


def _raw_queue(options: dict[str, str]) -> str | None:
    """The event queue the run drains (``None``: it lists, the sweep)."""
    discovery = options.get("raw_discovery") or "queue"
    if discovery not in DISCOVERY:
        raise ConfigurationError(
            f"--raw_discovery must be one of {', '.join(DISCOVERY)}, not {discovery!r}"
        )
    return options.get("raw_queue_url") or None if discovery == "queue" else None


def _bounds(options: dict[str, str]) -> dict[str, int]:
    """The run's bounds given as job arguments (the core's defaults otherwise)."""
    names = {
        "max_raw_objects": "max_objects",
        "raw_open_days": "open_days",
        "lateness_horizon_days": "horizon_days",
        "future_days": "future_days",
    }
    bounds = {}
    for argument, parameter in names.items():
        value = _whole_number(options, argument)
        if value is not None:
            bounds[parameter] = value
    return bounds


def _whole_number(options: dict[str, str], argument: str) -> int | None:
    """A job argument that must be a whole number >= 1 (``None`` when not given)."""
    value = options.get(argument)
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"--{argument} must be a whole number >= 1, not {value!r}")
    return int(value)


def main(argv: list[str]) -> int:
    """Run the job with ``argv`` (without the script name); the exit status."""
    return run_job(argv, compact, required=REQUIRED, optional=OPTIONAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
