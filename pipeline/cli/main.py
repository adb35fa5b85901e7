"""Entry point of the ``fmcg`` command."""

from __future__ import annotations

import typer

from pipeline.cli import api, curated, demo, forecast, kcl, local, stream
from pipeline.cli.console import err_console
from pipeline.errors import PipelineError

app = typer.Typer(
    help="FMCG streaming ingestion and demand forecasting, on AWS or on one machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(local.app, name="local")
app.command()(demo.demo)
app.add_typer(kcl.app, name="kcl")
app.add_typer(forecast.app, name="forecast")
app.add_typer(api.app, name="api")
app.add_typer(api.users_app, name="users")
app.command()(api.token)
app.command()(curated.compact)
app.command()(curated.query)
app.add_typer(stream.app, name="quarantine")
app.command("produce")(stream.produce)
app.command("consume")(stream.consume)


def main() -> None:
    """Run the CLI; pipeline errors print one clear line and exit 1 instead of a traceback."""
    try:
        app()
    except PipelineError as e:
        err_console.print(f"[red]error:[/] {e}")
        raise SystemExit(1) from e


if __name__ == "__main__":
    main()
