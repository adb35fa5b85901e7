"""Glue catalog registration of curated partitions (through awswrangler).

The tables also have partition projection, so Athena finds a partition the moment its
object exists; registering it too keeps the catalog honest for engines that read
partitions from Glue (Spark, Redshift Spectrum, the local query engine's listings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import awswrangler as wr

from pipeline.aws_errors import translated
from pipeline.lake import curated_partition_prefix

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date

    import boto3


def partition_values(day: date) -> list[str]:
    """The ``year``, ``month``, ``day`` partition values of a day, as strings."""
    return [f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"]


def register_partitions(
    *,
    database: str,
    table: str,
    bucket: str,
    days: Iterable[date],
    session: boto3.session.Session,
) -> None:
    """Add the day partitions of ``table`` to the catalog; existing ones are left as they are."""
    values = {
        f"s3://{bucket}/{curated_partition_prefix(day, table)}": partition_values(day)
        for day in days
    }
    if not values:
        return
    with translated(
        f"register partitions of {database}.{table}", service="glue", resource=f"{database}.{table}"
    ):
        wr.catalog.add_parquet_partitions(
            database=database, table=table, partitions_values=values, boto3_session=session
        )
