"""Run analysts' SQL over the curated zone: DuckDB locally, Athena on AWS, same SQL.

The engine is an explicit choice (``engine="duckdb" | "athena"``), never a guess about
where the code runs: DuckDB works against AWS too, and Athena against anything that
speaks its API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate
from pipeline.errors import ConfigurationError, InvalidInputError, TerminalError
from pipeline.query.catalog import TableInfo, catalog_tables
from pipeline.query.named import named_queries, named_query

if TYPE_CHECKING:
    import pandas as pd

Engine = Literal["duckdb", "athena"]
ENGINES: tuple[Engine, ...] = ("duckdb", "athena")


def run_query(
    sql: str,
    *,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session | None = None,
    engine: Engine = "duckdb",
    workgroup: str | None = None,
) -> pd.DataFrame:
    """Run ``sql`` against the tables of ``database`` and return the result as a DataFrame.

    ``duckdb`` reads the tables' files directly, an Iceberg table's current snapshot as
    PyIceberg plans it (see :mod:`pipeline.query.duckdb_engine`);
    ``athena`` submits the same SQL through awswrangler in ``workgroup``.
    """
    session = session or boto3.session.Session()
    if engine == "duckdb":
        from pipeline.query.duckdb_engine import run_duckdb

        tables = catalog_tables(database, curated_bucket=curated_bucket, session=session)
        return run_duckdb(sql, tables=tables, session=session, database=database)
    if engine == "athena":
        import awswrangler as wr

        try:
            df: pd.DataFrame = wr.athena.read_sql_query(
                sql,
                database=database,
                workgroup=workgroup or "primary",
                ctas_approach=False,
                boto3_session=session,
            )
        except wr.exceptions.QueryFailed as e:  # Athena ran it and refused it
            raise InvalidInputError(f"Athena query failed: {e}") from e
        except (wr.exceptions.QueryCancelled, wr.exceptions.NoFilesFound) as e:
            raise TerminalError(f"Athena query could not run: {e}") from e
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "Athena query could not run", service="athena") from e
        return df
    raise ConfigurationError(f"unknown query engine {engine!r} (use one of {', '.join(ENGINES)})")


__all__ = [
    "ENGINES",
    "Engine",
    "TableInfo",
    "catalog_tables",
    "named_queries",
    "named_query",
    "run_query",
]
