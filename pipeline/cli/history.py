"""``fmcg import``: daily history into the curated tables, through the ImportHistoryJob."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.console import console
from pipeline.cli.jobs import Engine, run_job
from pipeline.history.source import FORMATS

JOB = "ImportHistoryJob"


def _column(field: str, default: str | None) -> Any:
    return typer.Option(
        help=f"The source column holding {field}"
        + (f" (default: {default})." if default else " (optional)."),
        show_default=False,
    )


def import_history(
    source: Annotated[
        str,
        typer.Argument(
            help="A CSV or Parquet file, a folder of them, or an s3:// object or prefix."
        ),
    ],
    *,
    sku_id: Annotated[str, _column("the SKU", "sku_id")] = "sku_id",
    location_id: Annotated[str, _column("the location", "location_id")] = "location_id",
    date: Annotated[str, _column("the day", "date")] = "date",
    units: Annotated[str, _column("the units sold that day", "units")] = "units",
    price: Annotated[str | None, _column("the day's selling price", None)] = None,
    promotion: Annotated[str | None, _column("a promotion flag", None)] = None,
    end_of_day_stock: Annotated[str | None, _column("the end-of-day stock", None)] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="How dates written as text read (strptime codes; default %Y-%m-%d)."),
    ] = None,
    file_format: Annotated[
        str | None,
        typer.Option("--format", help=f"{' or '.join(FORMATS)}, when the file names do not say."),
    ] = None,
    engine: Engine = None,
) -> None:
    """Import daily history into demand_history and daily_demand (the ImportHistoryJob Glue
    job, run from its artifacts): bad rows are quarantined with their reasons, a re-import
    changes nothing, and streamed events win over history of the same SKU, location and day."""
    if file_format is not None and file_format not in FORMATS:
        raise typer.BadParameter(
            f"one of {', '.join(FORMATS)}, not {file_format!r}", param_hint="--format"
        )
    if not source.startswith("s3://"):
        path = Path(source).expanduser().resolve()
        if not path.exists():
            raise typer.BadParameter(f"no such file or folder: {source}", param_hint="SOURCE")
        # The job runs in its own process and directory: hand it an absolute path.
        source = str(path)
    arguments = {
        "--source": source,
        "--sku_id": sku_id,
        "--location_id": location_id,
        "--date": date,
        "--units": units,
        "--price": price,
        "--promotion": promotion,
        "--end_of_day_stock": end_of_day_stock,
        "--date_format": date_format,
        "--format": file_format,
        "--engine": engine,
    }
    report = run_job(JOB, arguments)
    reasons = report.pop("reasons", {})
    for name, value in report.items():
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        console.print(f"{name:>26}: {shown}", highlight=False)
    for reason, count in reasons.items():
        console.print(f"{'quarantined ' + reason:>26}: {count:,}", highlight=False)
