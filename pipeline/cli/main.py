"""Entry point of the ``fmcg`` command.

Bad input gets one line saying what was wrong and a non-zero status, never a traceback,
and in one place: the root command below. Commands raise :class:`PipelineError` (library
errors are translated into its subclasses where they are raised: the query engines, the
provisioner, the plot, the event file of ``local invoke``...), and the root maps it to
``error: <message>`` and status 1; a usage error (a missing argument, an option that does
not parse) to one line and status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.text import Text
from typer.core import TyperGroup

from pipeline.cli import (
    adopt,
    api,
    curated,
    demo,
    failed,
    forecast,
    history,
    kcl,
    local,
    quarantine,
    stream,
)
from pipeline.cli.console import err_console, printable
from pipeline.errors import PipelineError

#: click's error base class as typer uses it: typer vendors its own click since 0.29 (whose
#: classes are not the installed click's), so it is found from typer's own BadParameter.
_CLICK_ERROR: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)
#: The exit status of a command that failed on an error the pipeline raised.
EXIT_ERROR = 1
#: The exit status of a command line that does not parse (click's own).
EXIT_USAGE = 2


def fail(message: str, status: int) -> NoReturn:
    """Print ``error: <message>`` on one line to stderr and exit with ``status``."""
    # One line whatever the message holds (a job's log tail, a multi-line library error),
    # and inert: messages quote user input and producers' bytes.
    line = printable(" ".join(message.split()))
    err_console.print(Text.assemble(("error: ", "red"), line), soft_wrap=True)
    raise typer.Exit(status)


class _Root(TyperGroup):
    """The ``fmcg`` group: every subcommand runs inside its :meth:`invoke`."""

    # Any: typer's Context is its vendored click's, not the installed click's.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PipelineError as e:
            fail(str(e), EXIT_ERROR)
        except _CLICK_ERROR as e:  # a subcommand's arguments are parsed in here
            message: str = e.format_message()  # type: ignore[attr-defined]
            status: int = e.exit_code  # type: ignore[attr-defined]
            if type(e).__name__ == "NoArgsIsHelpError":  # a group without its subcommand
                if message.strip():  # typer's rich help is printed already, plain is not
                    typer.echo(message)
                raise typer.Exit(status) from None
            if status == EXIT_USAGE:
                where = getattr(e, "ctx", None) or ctx
                message += f" (see `{where.command_path} --help`)"
            fail(message, status)


app = typer.Typer(
    cls=_Root,
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
app.command("import")(history.import_history)
app.command()(curated.query)
app.command("adopt-hive")(adopt.adopt_hive)
app.add_typer(quarantine.app, name="quarantine")
app.command("produce")(stream.produce)
app.command("consume")(stream.consume)
app.command("replay-failed")(failed.replay_failed)


def main() -> None:
    """Run the CLI (errors are reported by the root command, see the module docstring)."""
    app()


if __name__ == "__main__":
    main()
