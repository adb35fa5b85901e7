"""Both Glue jobs on Spark: the same pure cores, spread over executors.

:mod:`.session` gets the Spark session (Glue's on AWS, local mode on one machine);
:mod:`.compaction` and :mod:`.forecasting` run each job's cores as Spark tasks. Rows travel
between stages as Arrow IPC bytes in plain RDDs, so no result depends on Spark's own
pandas conversions (which vary with the pandas version) and each guarantee keeps one
implementation: the one the single-process path runs.
"""
