"""``fmcg adopt-hive``: bring a Hive-layout curated zone of an earlier release into the
Iceberg tables, once (:mod:`pipeline.lake.adopt`)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.console import console


def adopt_hive(
    database: Annotated[str | None, typer.Option(help="Glue database.")] = None,
    curated_bucket: Annotated[str | None, typer.Option(help="Curated bucket.")] = None,
) -> None:
    """Adopt the curated zone's Hive-layout partitions into the Iceberg tables (one commit
    per table; safe to run again). Pause the jobs' triggers while it runs."""
    import boto3

    from pipeline.cli.curated import _names as names
    from pipeline.compaction.store import LakeStore
    from pipeline.lake.adopt import adopt

    database, curated_bucket, _, session = names(database, curated_bucket, None)
    session = session or boto3.session.Session()
    adopted = adopt(
        session,  # type: ignore[arg-type]
        LakeStore.from_session(session),  # type: ignore[arg-type]
        database=database,
        curated_bucket=curated_bucket,
    )
    for table, rows in adopted.items():
        console.print(f"{table:>14}: {rows:,} rows adopted", highlight=False)
