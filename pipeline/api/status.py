"""``GET /admin/status``: what an operator checks first, read from what the pipeline leaves.

- the quarantine: objects and bytes under ``quarantine/`` in the raw bucket, and the newest;
- the last compaction: when its manifest (``_state/compaction/manifest.json`` in the curated
  bucket, written last as the commit point of a run) was last written;
- the forecasts: items in the Forecasts table and when the newest was written, derived from
  its ``ttl`` (the forecaster sets it to write time + 90 days).

Both reads are bounded (:data:`MAX_PAGES` pages) so the route stays fast on a big lake;
``complete`` says whether the bound was hit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from pipeline.aws_errors import MISSING_OBJECT_CODES, error_code, translated
from pipeline.lake.layout import INGEST_QUARANTINE_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

MAX_PAGES: Final = 10
#: ``pipeline.compaction.state.MANIFEST_KEY``, repeated so the API does not import the
#: compaction package (pyarrow); a unit test keeps the two equal.
COMPACTION_MANIFEST_KEY: Final = "_state/compaction/manifest.json"
FORECAST_TTL: Final = timedelta(days=90)


def quarantine_status(s3: S3Client, bucket: str | None) -> dict[str, Any]:
    """Counts of the quarantine objects in the raw bucket."""
    if bucket is None:
        return {"configured": False}
    objects = size = 0
    newest: datetime | None = None
    complete = True
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": INGEST_QUARANTINE_PREFIX}
    for page_number in range(MAX_PAGES):
        with translated("list quarantine", service="s3"):
            page = s3.list_objects_v2(**kwargs)
        for obj in page.get("Contents", []):
            objects += 1
            size += obj.get("Size", 0)
            modified = obj.get("LastModified")
            if modified is not None and (newest is None or modified > newest):
                newest = modified
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
        complete = page_number < MAX_PAGES - 1
    return {
        "configured": True,
        "objects": objects,
        "bytes": size,
        "newest_object_at": newest.isoformat() if newest else None,
        "complete": complete,
    }


def compaction_status(s3: S3Client, bucket: str | None) -> dict[str, Any]:
    """When the last compaction run committed (``None`` before the first one)."""
    if bucket is None:
        return {"configured": False}
    try:
        head = s3.head_object(Bucket=bucket, Key=COMPACTION_MANIFEST_KEY)
    except ClientError as e:
        if error_code(e) in MISSING_OBJECT_CODES:
            return {"configured": True, "last_run_at": None}
        with translated("read compaction manifest", service="s3"):
            raise
    return {"configured": True, "last_run_at": head["LastModified"].isoformat()}


def forecast_status(dynamodb: DynamoDBClient, table: str) -> dict[str, Any]:
    """Forecast items and the time of the latest forecast run."""
    items = 0
    newest_ttl: int | None = None
    complete = True
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": "#ttl",
        "ExpressionAttributeNames": {"#ttl": "ttl"},
    }
    for page_number in range(MAX_PAGES):
        with translated("scan forecasts", service="dynamodb"):
            page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            items += 1
            ttl = item.get("ttl", {}).get("N")
            if ttl is not None and (newest_ttl is None or int(float(ttl)) > newest_ttl):
                newest_ttl = int(float(ttl))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        complete = page_number < MAX_PAGES - 1
    latest_run = (
        None
        if newest_ttl is None
        else (datetime.fromtimestamp(newest_ttl, UTC) - FORECAST_TTL).isoformat()
    )
    return {"items": items, "latest_run_at": latest_run, "complete": complete}


def pipeline_status(
    *,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    raw_bucket: str | None,
    curated_bucket: str | None,
    forecast_table: str,
) -> dict[str, Any]:
    """The whole status document of ``GET /admin/status``."""
    return {
        "quarantine": quarantine_status(s3, raw_bucket),
        "compaction": compaction_status(s3, curated_bucket),
        "forecasts": forecast_status(dynamodb, forecast_table),
    }
