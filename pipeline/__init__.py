"""FMCG streaming ingestion and demand-forecasting pipeline.

The package is the code every runtime shares (the Lambda layer, the Glue jobs, the KCL
worker and the ``fmcg`` CLI): contracts, lake layout, ingest, compaction, forecasting,
the API and the local runtime that emulates AWS on one machine.
"""

__version__ = "0.1.0"
