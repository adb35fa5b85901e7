"""A local session's Python workers come from the project's daemon: the jobs' modules are
imported before they fork, and an unchanged zip archive is not re-read before each task."""

from __future__ import annotations

import sys
import zipimport
from typing import TYPE_CHECKING

from pipeline.spark.python_daemon import PRELOADED

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_given_a_local_session_when_a_task_runs_then_its_worker_has_the_jobs_modules(
    spark: SparkSession,
) -> None:
    # Defined here, so it is pickled by value: the worker imports nothing for it.
    def _worker_state(_: int) -> tuple[list[str], str, str]:
        """The preloaded modules a worker has, and where its daemon and its zip rule come from."""
        loaded: list[str] = [m for m in PRELOADED if m in sys.modules]
        daemon = sys.modules["__main__"].__spec__
        rule = zipimport.zipimporter.invalidate_caches
        return loaded, daemon.name if daemon else "", f"{rule.__module__}.{rule.__qualname__}"

    states = spark.sparkContext.parallelize(range(4), 2).map(_worker_state).collect()

    assert (
        states
        == [(list(PRELOADED), "pipeline.spark.python_daemon", "__main__.invalidate_caches")] * 4
    )
