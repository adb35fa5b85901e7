"""``fmcg api serve``, ``fmcg users create`` and ``fmcg token``: the API on one machine."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipeline.cli.console import console, err_console, untrusted
from pipeline.cli.local import current_stack
from pipeline.local.emulator import local_environment

app = typer.Typer(help="The REST API behind a local API Gateway (127.0.0.1).", no_args_is_help=True)
users_app = typer.Typer(help="Users of the local Cognito user pool.", no_args_is_help=True)


@app.command()
def serve(
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).", min=0, max=65535)
    ] = 8080,
    concurrency: Annotated[
        int, typer.Option(help="Handler instances serving at once (like Lambda containers).", min=1)
    ] = 4,
) -> None:
    """Serve the API like API Gateway with the Cognito authorizer, until Ctrl-C."""
    from pipeline.local.gateway import LocalGateway
    from pipeline.local.invoke import load_handler

    stack = current_stack()
    # The handler's AWS clients read the endpoint and credentials from the environment.
    os.environ.update(local_environment(stack.endpoint_url))
    gateway = LocalGateway(
        stack,
        handler_factory=lambda function: load_handler(stack, function),
        concurrency=concurrency,
        port=port,
    )
    err_console.print(
        f"[green]serving[/] {gateway.url} (routes: "
        + ", ".join(f"{r.method} {r.resource} -> {r.function or 'mock'}" for r in gateway.routes)
        + f"); spec at {gateway.url}/openapi.json; Ctrl-C stops"
    )
    try:
        gateway.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Username.")],
    group: Annotated[
        list[str] | None,
        typer.Option("--group", "-g", help="AdminGroup, PlannerGroup or ViewerGroup (repeat)."),
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (default: a local one `fmcg token` knows).")
    ] = None,
) -> None:
    """Create a user in the local user pool (or update it) with a password and groups."""
    from pipeline.local.users import create_user

    create_user(current_stack(), name, groups=group or [], password=password)
    groups = ", ".join(group or []) or "no group"
    err_console.print("[green]user[/]", untrusted(f"{name} in {groups}"))


def token(
    name: Annotated[str, typer.Argument(help="Username.")],
    password: Annotated[str | None, typer.Option(help="Password, if not the local one.")] = None,
) -> None:
    """Print the id token of a local user (the API's Authorization header)."""
    from pipeline.local.users import id_token

    console.print(id_token(current_stack(), name, password), highlight=False, soft_wrap=True)
