"""The Spark session a job runs on: Glue's cluster on AWS, local mode anywhere else."""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any, Final

import boto3

from pipeline.compaction.store import LakeStore
from pipeline.settings import LOOPBACK_HOST

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Tasks per core of a stage (see :func:`slices`).
TASKS_PER_CORE: Final = 4
#: Overrides the master of a session started outside a cluster (``local[2]``, ...).
MASTER_VARIABLE: Final = "FMCG_SPARK_MASTER"
SETTINGS: Final = {
    # Spark's own UI and shuffle service are of no use to a batch job run from a script.
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}


def spark_session(app_name: str, cores: int | None = None) -> SparkSession:
    """The running session, or a new one.

    Under Glue (or any ``spark-submit``) the launcher has set ``spark.master`` and the
    session is the cluster's. Started from a plain Python process it runs in local mode
    with ``cores`` worker threads (default: every core), its driver bound to 127.0.0.1, and
    its Python workers on this interpreter, so they import what this process imports.
    """
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = SparkConf()
    builder = SparkSession.builder.appName(app_name)
    for key, value in SETTINGS.items():
        builder = builder.config(key, value)
    if not conf.contains("spark.master"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        master = os.environ.get(MASTER_VARIABLE) or f"local[{cores or '*'}]"
        builder = (
            builder.master(master)
            .config("spark.driver.host", LOOPBACK_HOST)
            .config("spark.driver.bindAddress", LOOPBACK_HOST)
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def slices(spark_context: Any, items: int) -> int:
    """Partitions for ``items`` units of work: a few per core (fewer tasks cost less fixed
    overhead; a few per core still balance uneven units), never more than the items."""
    return max(1, min(items, TASKS_PER_CORE * int(spark_context.defaultParallelism)))


@functools.cache
def executor_session() -> boto3.session.Session:
    """The boto3 session of this executor process (the job's role on Glue, the endpoint
    locally). One per process, since Spark reuses its Python workers: a new session loads
    every service model again, which costs more than a small task's work."""
    return boto3.session.Session()


@functools.cache
def executor_store() -> LakeStore:
    """The S3 store of this executor process (boto3 clients are thread-safe)."""
    return LakeStore.from_session(executor_session())
