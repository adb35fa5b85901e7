"""HeldAsideRecords and UnreadableRawObjects into CloudWatch with PutMetricData.

A Glue job's output is not an EMF log stream, so the job puts the metric itself (as the
forecast job puts ForecastBias). One datum per run, zero included, so the alarm on it sees
the job alive; namespace, name and dimension are the ones infra/template.yaml's
HeldAsideRecords alarm reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate

if TYPE_CHECKING:
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient

NAMESPACE: Final = "FMCG/System"
HELD_ASIDE_RECORDS: Final = "HeldAsideRecords"
UNREADABLE_RAW_OBJECTS: Final = "UnreadableRawObjects"
#: Powertools' ``service`` dimension, which every metric of the project carries.
DIMENSIONS: Final = ({"Name": "service", "Value": "compaction"},)


def publish_run_counts(
    cloudwatch: CloudWatchClient, *, held_aside: int, unreadable: int, timestamp: datetime
) -> None:
    """Put one HeldAsideRecords and one UnreadableRawObjects datum (counts)."""
    counts = {HELD_ASIDE_RECORDS: held_aside, UNREADABLE_RAW_OBJECTS: unreadable}
    try:
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [dict(d) for d in DIMENSIONS],  # type: ignore[misc]
                    "Timestamp": timestamp,
                    "Value": float(value),
                    "Unit": "Count",
                }
                for name, value in counts.items()
            ],
        )
    except (ClientError, BotoCoreError) as e:
        raise translate(e, f"PutMetricData {NAMESPACE}") from e
