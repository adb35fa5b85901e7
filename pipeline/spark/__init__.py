"""Both Glue jobs on Spark: the same pure cores and the same Iceberg tables.

:mod:`.session` gets the Spark session (Glue's on AWS, local mode on one machine) with
Iceberg's catalog on the Glue Data Catalog; :mod:`.jars` installs the locked Iceberg jars a
local session needs. :mod:`.compaction` and :mod:`.forecasting` run each job: raw rows and
table rows enter and leave Python only as Arrow batches (``mapInArrow``), de-duplication,
joins and every table write stay in the JVM (Iceberg's Spark runtime, the writer API, one
commit per table per run), and the Python cores that both engines share (the parser, the
demand's stock carry, the forecaster) run on the executors, so each guarantee keeps one
implementation.
"""
