"""HeldAsideRecords and UnreadableRawObjects into CloudWatch with PutMetricData.

A Glue job's output is not an EMF log stream, so the job puts its metrics itself
(:mod:`pipeline.job_metrics`). One datum of each per run, zero included; namespace, names
and dimension are the ones infra/template.yaml's HeldAside and UnreadableRawObjects alarms
read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pipeline.job_metrics import put_metrics

if TYPE_CHECKING:
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient

NAMESPACE: Final = "FMCG/System"
HELD_ASIDE_RECORDS: Final = "HeldAsideRecords"
UNREADABLE_RAW_OBJECTS: Final = "UnreadableRawObjects"
#: Powertools' ``service`` dimension, which every metric of the project carries.
SERVICE: Final = "compaction"


def publish_run_counts(
    cloudwatch: CloudWatchClient, *, held_aside: int, unreadable: int, timestamp: datetime
) -> None:
    """Put one HeldAsideRecords and one UnreadableRawObjects datum (counts)."""
    counts = {HELD_ASIDE_RECORDS: held_aside, UNREADABLE_RAW_OBJECTS: unreadable}
    put_metrics(
        cloudwatch,
        NAMESPACE,
        SERVICE,
        {name: (float(value), "Count") for name, value in counts.items()},
        timestamp=timestamp,
    )
