"""Fixtures of the property suites."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """Spark in local mode on 2 cores (one per module: a session starts in seconds)."""
    from pipeline.spark.session import spark_session

    session = spark_session("fmcg-tests", cores=2)
    yield session
    session.stop()
