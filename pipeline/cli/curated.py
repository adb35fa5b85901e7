"""``fmcg compact`` and ``fmcg query``: the curated zone from the command line."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipeline.cli.console import console, err_console
from pipeline.cli.jobs import Engine, run_job
from pipeline.errors import ConfigurationError
from pipeline.query.formats import FORMATS
from pipeline.settings import ATHENA_WORKGROUP, CURATED_BUCKET, GLUE_DATABASE


def compact(
    engine: Engine = None,
    backfill: Annotated[
        list[str] | None,
        typer.Option(
            help="A compaction quarantine key (curated bucket) whose held-aside events "
            "(too_late, future) to merge; repeatable. The run does only that.",
        ),
    ] = None,
    max_raw_objects: Annotated[
        int | None, typer.Option(min=1, help="At most this many raw objects in this run.")
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            help="List the raw zone's open arrival days instead of draining its event queue, "
            "for raw objects no notification announced (written before the queue existed, "
            "or whose messages expired).",
        ),
    ] = False,
    maintenance: Annotated[
        str | None,
        typer.Option(
            help="off, after (pack small files and expire old snapshots after the run) or "
            "only (that instead of the run)."
        ),
    ] = None,
) -> None:
    """Run the compaction Glue job locally as Glue would: from its artifacts, in its runtime."""
    arguments = {
        "--engine": engine,
        "--backfill": ",".join(backfill) if backfill else None,
        "--max_raw_objects": None if max_raw_objects is None else str(max_raw_objects),
        "--maintenance": maintenance,
        "--raw_discovery": "listing" if sweep else None,
    }
    report = run_job("CompactSalesJob", arguments)
    for name, value in report.items():
        console.print(f"{name:>22}: {value:,}", highlight=False)


def _names(
    database: str | None, curated_bucket: str | None, workgroup: str | None
) -> tuple[str, str, str | None, object]:
    """Explicit option > environment variable > the running local stack."""
    database = database or os.environ.get(GLUE_DATABASE)
    curated_bucket = curated_bucket or os.environ.get(CURATED_BUCKET)
    workgroup = workgroup or os.environ.get(ATHENA_WORKGROUP)
    session: object = None
    if not database or not curated_bucket:
        from pipeline.cli.local import current_stack

        stack = current_stack()
        database = database or stack.ref("LakeDatabase")
        curated_bucket = curated_bucket or stack.ref("CuratedBucket")
        workgroup = workgroup or stack.ref("AthenaWorkGroup")
        session = stack.session()
    return database, curated_bucket, workgroup, session


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(
            f"{value!r} is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    return value


def query(
    sql: Annotated[str | None, typer.Argument(help="SQL (Athena dialect).")] = None,
    *,
    named: Annotated[
        str | None, typer.Option(help="Run this named query from the template instead.")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="duckdb (reads the tables' files locally) or athena.")
    ] = "duckdb",
    database: Annotated[str | None, typer.Option(help="Glue database.")] = None,
    curated_bucket: Annotated[str | None, typer.Option(help="Curated bucket.")] = None,
    workgroup: Annotated[str | None, typer.Option(help="Athena workgroup.")] = None,
    limit: Annotated[
        int, typer.Option(help="Rows to print in the table format (csv and json print all).", min=0)
    ] = 50,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="|".join(FORMATS),
            callback=_check_format,
            help="table (for people, up to --limit rows), csv or json (every row, for"
            " scripts: json is one array of objects, a row per line).",
        ),
    ] = "table",
) -> None:
    """Run SQL over the curated zone (DuckDB by default, or Athena) and print the rows.

    The row count goes to stderr, the rows to stdout.
    """
    from pipeline.local.template import load_template
    from pipeline.query import ENGINES, named_query, run_query
    from pipeline.query.formats import to_csv, to_json

    if engine not in ENGINES:
        raise ConfigurationError(f"unknown engine {engine!r} (use one of {', '.join(ENGINES)})")
    if (sql is None) == (named is None):
        raise ConfigurationError("give either SQL or --named <name>")
    if named is not None:
        sql = named_query(load_template(), named)
    assert sql is not None  # noqa: S101 - checked above
    database, curated_bucket, workgroup, session = _names(database, curated_bucket, workgroup)
    if engine == "athena" and session is not None:
        # moto accepts a query and reports it succeeded, but never writes its results.
        raise ConfigurationError(
            "--engine athena needs AWS (set GLUE_DATABASE and CURATED_BUCKET): the local "
            "emulator's Athena does not run SQL; use --engine duckdb locally"
        )
    frame = run_query(
        sql,
        curated_bucket=curated_bucket,
        database=database,
        session=session,  # type: ignore[arg-type]
        engine=engine,  # type: ignore[arg-type]
        workgroup=workgroup,
    )
    err_console.print(f"{len(frame)} rows", highlight=False)
    if output_format != "table":
        # Verbatim for scripts: rich would wrap, highlight or read markup.
        typer.echo(to_csv(frame) if output_format == "csv" else to_json(frame), nl=False)
        return
    # The rows are data: never markup or emoji codes.
    console.print(
        frame.head(limit).to_string(index=False),
        highlight=False,
        soft_wrap=True,
        markup=False,
        emoji=False,
    )
