"""The Spark session a job runs on: Glue's cluster on AWS, local mode anywhere else.

Either way the session has Apache Iceberg's catalog :data:`ICEBERG_CATALOG`: the Glue Data
Catalog (``GlueCatalog``) with files through ``S3FileIO``, the curated tables being
``glue_catalog.<database>.<table>`` (:func:`table_name`). On Glue 5.1 the jars come with
``--datalake-formats iceberg``; in local mode they are the locked ones ``make install``
put in the virtualenv (:mod:`.jars`). Against the emulator (``AWS_ENDPOINT_URL`` set) the
catalog's Glue and S3 clients get its endpoint, path-style addressing, the region and the
static credentials of the environment (:func:`iceberg_settings`).
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

import boto3

from pipeline.compaction.store import LakeStore
from pipeline.settings import LOOPBACK_HOST

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyspark.sql import SparkSession

#: The Spark catalog of the curated Iceberg tables (Glue's name for it in its examples).
ICEBERG_CATALOG: Final = "glue_catalog"

#: Tasks per core of a stage (see :func:`slices`).
TASKS_PER_CORE: Final = 4
ICEBERG_EXTENSIONS: Final = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
ENDPOINT_VARIABLE: Final = "AWS_ENDPOINT_URL"
LOCAL_DRIVER_MEMORY: Final = "2g"
#: Overrides the master of a session started outside a cluster (``local[2]``, ...).
MASTER_VARIABLE: Final = "FMCG_SPARK_MASTER"
SETTINGS: Final = {
    # Spark's own UI and shuffle service are of no use to a batch job run from a script.
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    # Dates and times are UTC (the curated tables' timestamps have no zone), whatever the
    # machine's zone.
    "spark.sql.session.timeZone": "UTC",
    # A run caches its parsed raw rows once, to read them twice: compressing the cached
    # columns cost more than the memory it saves (measured: ~2 s of 80,000 rows on 1 core).
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}


def table_name(database: str, table: str) -> str:
    """A curated table's name in Spark SQL (``glue_catalog.`<database>`.`<table>```): quoted,
    since a stack's database name may hold a hyphen."""
    return ".".join(f"`{part.replace('`', '``')}`" for part in (ICEBERG_CATALOG, database, table))


def iceberg_settings(environ: Mapping[str, str], warehouse: str | None = None) -> dict[str, str]:
    """The Spark settings of the Iceberg catalog, for the AWS account or the emulator that
    ``environ`` (the process environment) points at.

    ``warehouse``: where a table created without a location would go (the curated bucket);
    the job's tables are created with their own location (:mod:`pipeline.lake.tables`).
    """
    prefix = f"spark.sql.catalog.{ICEBERG_CATALOG}"
    settings = {
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        # Every read sees the table's latest commit, whoever made it (the other engine,
        # maintenance): a cached table would serve its snapshot for 30 s.
        f"{prefix}.cache-enabled": "false",
        # The database is named after the stack (``<stack>_lake``), and a stack's name may
        # hold a hyphen, which Glue accepts and Iceberg's Hive-style name check refuses.
        f"{prefix}.glue.skip-name-validation": "true",
    }
    if warehouse:
        settings[f"{prefix}.warehouse"] = warehouse
    endpoint = environ.get(ENDPOINT_VARIABLE)
    host = urlparse(endpoint).hostname or "" if endpoint else ""
    if endpoint and not host.endswith("amazonaws.com"):
        settings |= {
            f"{prefix}.glue.endpoint": endpoint,
            f"{prefix}.s3.endpoint": endpoint,
            f"{prefix}.s3.path-style-access": "true",
        }
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if region:
            settings[f"{prefix}.client.region"] = region
        key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            settings[f"{prefix}.s3.access-key-id"] = key
            settings[f"{prefix}.s3.secret-access-key"] = secret
            if token := environ.get("AWS_SESSION_TOKEN"):
                settings[f"{prefix}.s3.session-token"] = token
    return settings


def spark_session(
    app_name: str, cores: int | None = None, *, warehouse: str | None = None
) -> SparkSession:
    """The running session, or a new one, with the Iceberg catalog (see the module doc).

    Under Glue (or any ``spark-submit``) the launcher has set ``spark.master`` and the
    session is the cluster's. Started from a plain Python process it runs in local mode
    with ``cores`` worker threads (default: every core), its driver bound to 127.0.0.1, its
    Python workers on this interpreter, so they import what this process imports, and the
    locked Iceberg jars on its class path (a clear error when ``make install`` has not
    installed them).
    """
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = SparkConf()
    builder = SparkSession.builder.appName(app_name)
    for key, value in (SETTINGS | iceberg_settings(os.environ, warehouse)).items():
        builder = builder.config(key, value)
    if not conf.contains("spark.master"):
        from pipeline.spark.jars import iceberg_jars

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        master = os.environ.get(MASTER_VARIABLE) or f"local[{cores or '*'}]"
        builder = (
            builder.master(master)
            .config("spark.driver.host", LOOPBACK_HOST)
            .config("spark.driver.bindAddress", LOOPBACK_HOST)
            .config("spark.jars", ",".join(str(p) for p in iceberg_jars()))
            # Local mode runs the executors in the driver's JVM: the default 1 GiB heap
            # holds the cached chunks of a 2,000-series forecast only just.
            .config("spark.driver.memory", LOCAL_DRIVER_MEMORY)
            # Its Python workers re-read no unchanged zip archive before each task.
            .config("spark.python.daemon.module", "pipeline.spark.python_daemon")
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


@functools.cache
def settled_worker() -> None:
    """Leave what this Python worker has loaded so far out of its garbage collections.

    PySpark's daemon collects garbage after every task of a reused worker, and a full
    collection walks every object: the modules, pyarrow's and boto3's (its service models)
    cost ~50 ms a task (measured on a 2-core machine), paid again by every task of every
    stage. Frozen once per worker, after a task has imported what it needs, a collection
    only walks what later tasks create (their garbage is collected as before).
    """
    gc.freeze()
