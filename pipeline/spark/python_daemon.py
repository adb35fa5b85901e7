"""PySpark's Python daemon for local mode (``spark.python.daemon.module``, set by
:func:`.session.spark_session`): its workers start with the jobs' modules imported, and keep
each zip archive's directory while the archive is unchanged.

PySpark's worker calls ``importlib.invalidate_caches()`` before every task, and on Python 3.11
(Glue 5.1's) that makes each ``zipimporter`` on ``sys.path`` parse its archive's whole
directory again. Spark puts its 14 MB core jar (5,221 entries) and ``pyspark.zip`` (793) on the
workers' path, so every task spent ~34 ms of CPU re-reading two archives that never change:
65 % of the Python workers' CPU in the forecast agreement test (py-spy). Here an archive is
read again only when its size, inode or modification time differ from the last read; the
workers fork from this process, so they inherit the change.

And each worker imported the Spark jobs' modules (PyIceberg, pandas, boto3, pyspark's own
from ``pyspark.zip``, compiled from source since a zip holds no bytecode) on its first task:
78 % of what remained. The daemon imports them once (:data:`PRELOADED`) and every worker it
forks starts with them, as a pre-forking server preloads its application. Everything else is
``pyspark.daemon``.
"""

from __future__ import annotations

import importlib
import zipimport
from pathlib import Path
from typing import Any, Final

from pyspark import daemon

#: The modules whose functions the jobs ship to the workers (and what they import).
PRELOADED: Final = (
    "pyspark.worker",
    "pipeline.spark.compaction",
    "pipeline.spark.forecasting",
    "pipeline.spark.history",
)

_reread = zipimport.zipimporter.invalidate_caches
_SEEN = "_fmcg_archive_stat"


def invalidate_caches(importer: Any) -> None:
    """``zipimporter.invalidate_caches``, skipped when the archive is the one last read."""
    try:
        stat = Path(importer.archive).stat()
        key: tuple[int, int, int] | None = (stat.st_size, stat.st_ino, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and getattr(importer, _SEEN, None) == key:
        return
    _reread(importer)
    setattr(importer, _SEEN, key)


if __name__ == "__main__":
    zipimport.zipimporter.invalidate_caches = invalidate_caches  # type: ignore[method-assign,assignment]
    for module in PRELOADED:
        importlib.import_module(module)
    importlib.invalidate_caches()  # each archive read once, here, before the workers fork
    daemon.manager()  # type: ignore[no-untyped-call]
