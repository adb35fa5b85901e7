"""ForecastBias into CloudWatch with PutMetricData.

CloudWatch extracts embedded-metric-format lines only from log streams written with the
EMF header (Lambda's, the CloudWatch agent's), never from a Glue job's output, so the job
puts the metric itself. Namespace, name, dimension and unit are the ones the
ForecastBias alarm and the dashboard in infra/template.yaml read; the job's role may put
metrics into this namespace only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pipeline.job_metrics import put_metrics

if TYPE_CHECKING:
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient

NAMESPACE: Final = "FMCG/Business"
FORECAST_BIAS: Final = "ForecastBias"
#: Powertools' ``service`` dimension, which every metric of the project carries.
SERVICE: Final = "forecast"


def publish_forecast_bias(
    cloudwatch: CloudWatchClient, bias_pct: float | None, *, timestamp: datetime
) -> None:
    """Put one ForecastBias datum (percent); nothing when there was nothing to measure."""
    if bias_pct is None:
        return
    put_metrics(
        cloudwatch, NAMESPACE, SERVICE, {FORECAST_BIAS: (bias_pct, "Percent")}, timestamp=timestamp
    )
