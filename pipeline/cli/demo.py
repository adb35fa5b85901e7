"""``fmcg demo``: run the whole pipeline once on the embedded emulator and report."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.console import console, err_console
from pipeline.cli.local import ensure_up
from pipeline.demo import DemoReport, run_demo
from pipeline.local.stack import LocalStack


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} ms"


def render(report: DemoReport) -> Table:
    """The demo's report as a table."""
    table = Table(title="fmcg demo", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    rows = [
        (
            "events produced",
            f"{report.events_produced:,} in {report.kinesis_records:,} "
            f"Kinesis records (+{report.poison_produced} poison records)",
        ),
        ("events landed in raw", f"{report.events_landed:,}"),
        ("records quarantined", f"{report.quarantined:,}"),
        ("stream lag p50 / p99", f"{_ms(report.lag_p50_ms)} / {_ms(report.lag_p99_ms)}"),
        ("curated rows", f"{report.curated_rows:,} in {report.curated_partitions} partitions"),
        ("forecast items", f"{report.forecast_items:,}"),
        (
            "forecast bias",
            "n/a (no past forecasts yet)"
            if report.forecast_bias_pct is None
            else f"{report.forecast_bias_pct:+.1f} %",
        ),
        (
            "API GET /forecasts",
            f"HTTP {report.api_status}: {json.dumps(report.api_response, default=str)[:300]}",
        ),
        ("SQL over curated", json.dumps(report.query_rows, default=str)),
        ("forecast chart", str(report.chart)),
        ("wall time", f"{report.seconds:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def demo(
    weeks: Annotated[int, typer.Option(help="Weeks of synthetic history.", min=1)] = 8,
    skus: Annotated[int, typer.Option(help="Number of SKUs.", min=1)] = 12,
    locations: Annotated[int, typer.Option(help="Number of locations.", min=1)] = 4,
    live: Annotated[
        int, typer.Option(help="Live events produced after the history.", min=0)
    ] = 2000,
    out: Annotated[Path, typer.Option(help="Where the chart goes.")] = Path("out"),
) -> None:
    """Provision, produce, consume, compact, forecast, serve and query: the whole pipeline."""
    emulator = ensure_up()
    # A fresh stack per run on the running emulator, so every report counts only its own run.
    stack = LocalStack.create(emulator.endpoint_url, stack_name=f"demo{int(time.time())}")
    err_console.print(f"emulator {stack.endpoint_url}, stack [bold]{stack.stack_name}[/]")
    report = run_demo(
        stack,
        out_dir=out,
        weeks=weeks,
        n_skus=skus,
        n_locations=locations,
        live_events=live,
        step=lambda msg: err_console.print(f"[cyan]>[/] {msg}"),
    )
    console.print(render(report))
    err_console.print(
        f"the emulator keeps running at {stack.endpoint_url} for more commands "
        "(`fmcg local status`); `fmcg local down` stops it"
    )
