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
from typing import Any

import boto3

from pipeline.compaction import run_compaction
from pipeline.job_protocol import Progress, engine, run_job
from pipeline.lake.locations import LOCATION_ARGUMENTS, LocationDefaults

REQUIRED = ("raw_bucket", "curated_bucket", "database")
OPTIONAL = ("engine", *LOCATION_ARGUMENTS)


def compact(options: dict[str, str], progress: Progress) -> dict[str, Any]:
    """One compaction run, on the ``--engine`` it names; its report."""
    arguments = {
        "raw_bucket": options["raw_bucket"],
        "curated_bucket": options["curated_bucket"],
        "database": options["database"],
        "session": boto3.session.Session(),
        "progress": progress,
        "location_defaults": LocationDefaults.from_job_arguments(options),
    }
    if engine(options) == "spark":
        from pipeline.spark.compaction import run_compaction_spark
        from pipeline.spark.session import spark_session

        return run_compaction_spark(spark=spark_session("compact-sales"), **arguments).as_dict()
    return run_compaction(**arguments).as_dict()


def main(argv: list[str]) -> int:
    """Run the job with ``argv`` (without the script name); the exit status."""
    return run_job(argv, compact, required=REQUIRED, optional=OPTIONAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
