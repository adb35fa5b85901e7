"""PutMetricData for the Glue jobs, in one place.

CloudWatch extracts embedded-metric-format lines only from log streams written with the EMF
header (Lambda's, the CloudWatch agent's), never from a Glue job's output, so a job puts its
metrics itself, with Powertools' ``service`` dimension as every metric of the project has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate

if TYPE_CHECKING:
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient


def put_metrics(
    cloudwatch: CloudWatchClient,
    namespace: str,
    service: str,
    values: dict[str, tuple[float, str]],
    *,
    timestamp: datetime,
) -> None:
    """Put one datum per metric name (``name -> (value, unit)``) in one request."""
    try:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "service", "Value": service}],
                    "Timestamp": timestamp,
                    "Value": value,
                    "Unit": unit,  # type: ignore[typeddict-item]
                }
                for name, (value, unit) in values.items()
            ],
        )
    except (ClientError, BotoCoreError) as e:
        raise translate(e, f"PutMetricData {namespace}/{', '.join(values)}") from e
