"""``fmcg forecast``: run the forecast Glue job locally, chart a series, backtest a dataset."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.console import console, progress, untrusted
from pipeline.cli.jobs import Engine, run_job
from pipeline.errors import InvalidInputError, PipelineError

JOB = "ForecastDemandJob"

app = typer.Typer(help="The batch demand forecaster.", no_args_is_help=False)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise typer.BadParameter(f"not a date (yyyy-mm-dd): {text!r}", param_hint=option) from e


@app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Backfill: forecast as a run on this day (yyyy-mm-dd) would have, "
            "from the actuals before it.",
        ),
    ] = None,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish",
            help="With --as-of: also write the backfill's forecasts to the forecast table "
            "(readable through the API; never over a forecast made for a later moment).",
        ),
    ] = False,
    engine: Engine = None,
) -> None:
    """Forecast every SKU x location on the local stack: the ForecastDemandJob Glue job, run
    from its artifacts as Glue would."""
    if ctx.invoked_subcommand is not None:
        return
    if publish and as_of is None:
        raise typer.BadParameter(
            "needs --as-of: a regular run always publishes", param_hint="--publish"
        )
    if as_of is not None:
        day = _day(as_of, "--as-of")
        if day > datetime.now(UTC).date():
            # The job would "forecast" from no actuals and stamp the archive in the future.
            raise typer.BadParameter(f"{as_of} is after today", param_hint="--as-of")
    arguments = {"--as_of": as_of, "--publish": "true" if publish else None, "--engine": engine}
    report = run_job(JOB, arguments)
    console.print_json(data=report)


@app.command()
def plot(
    sku: Annotated[str, typer.Argument(help="SKU id.")],
    location: Annotated[str, typer.Argument(help="Location id.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write.")] = None,
) -> None:
    """Write a PNG of one series: history (curated), forecast and 80 % interval (DynamoDB)."""
    from pipeline.cli.local import current_stack
    from pipeline.local.forecast_chart import plot_from_stack

    path = plot_from_stack(
        current_stack(), sku, location, out or Path(f"forecast-{sku}-{location}.png")
    )
    console.print("wrote", untrusted(str(path)))


@app.command()
def backtest(  # noqa: PLR0917 (typer reads the options from the signature)
    data: Annotated[
        Path,
        typer.Option(
            help="Parquet with columns id, date, sales (optional: location_id or store_id, "
            "sku_id or item_id, price, promotion; see README)."
        ),
    ],
    json_path: Annotated[Path, typer.Option("--json", help="Scores as JSON.")],
    predictions: Annotated[Path, typer.Option(help="Per-series forecasts as Parquet.")],
    cutoff: Annotated[
        str | None, typer.Option(help="Last training day (default: hold out the last 28).")
    ] = None,
    horizon: Annotated[int, typer.Option(help="Days to forecast.", min=1)] = 28,
    calendar: Annotated[
        Path | None,
        typer.Option(help="YAML declaring locations, events and closures (see README)."),
    ] = None,
    prices: Annotated[
        bool,
        typer.Option(
            help="Read the price and promotion columns as the forecast job reads prices "
            "(--no-prices: ignore them, to compare)."
        ),
    ] = True,
) -> None:
    """Score the forecaster and baselines with the M5 protocol on any dataset."""
    from pipeline.forecasting.backtest import backtest as run_backtest
    from pipeline.forecasting.backtest import read_backtest_data
    from pipeline.forecasting.calendar import CalendarSpec

    if not data.exists():
        raise PipelineError(f"no such data file: {data}")
    spec = None
    if calendar is not None:
        try:
            spec = CalendarSpec.read(calendar.read_text())
        except OSError as e:
            raise InvalidInputError(f"cannot read {calendar}: {e.strerror}") from e
    if cutoff is not None:
        _day(cutoff, "--cutoff")
    frame = read_backtest_data(data)
    with progress() as bar:
        bar.add_task("backtest", total=None)
        result = run_backtest(frame, cutoff=cutoff, horizon=horizon, calendar=spec, prices=prices)
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.summary, indent=2) + "\n")
        predictions.parent.mkdir(parents=True, exist_ok=True)
        result.predictions.to_parquet(predictions, index=False)
    except OSError as e:
        raise InvalidInputError(f"cannot write {e.filename or json_path}: {e.strerror}") from e
    console.print_json(data=result.summary["models"])
    console.print("wrote", untrusted(f"{json_path} and {predictions}"))
