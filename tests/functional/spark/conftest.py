"""Fixtures of the Spark functional tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession


@pytest.fixture(scope="module")
def spark(emulator_url: str) -> Iterator[SparkSession]:
    """Spark in local mode on 1 core, its Iceberg catalog on the emulator (one per module)."""
    from pipeline.spark.session import spark_session

    session = spark_session("fmcg-functional", cores=1)
    yield session
    session.stop()
