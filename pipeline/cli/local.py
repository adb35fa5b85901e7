"""``fmcg local up | down | status | invoke``: the embedded AWS emulator."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.console import console, err_console
from pipeline.errors import ConfigurationError
from pipeline.local.emulator import is_running, local_environment, start_server, stop_server
from pipeline.local.stack import DEFAULT_STACK_NAME, LocalStack, state_dir
from pipeline.local.template import DEFAULT_TEMPLATE

app = typer.Typer(
    help="The embedded AWS emulator (moto server on 127.0.0.1).", no_args_is_help=True
)


def state_file() -> Path:
    return state_dir() / "local.json"


def current_stack() -> LocalStack:
    """The running local stack, or a clear error telling the user to start one.

    Also points this process's AWS SDKs at the emulator, so that any library that builds
    its own clients (awswrangler's default session, say) can never reach AWS by accident.
    """
    stack = LocalStack.load(state_file())
    if stack.pid is not None and not is_running(stack.pid):
        raise ConfigurationError("the local emulator is not running (run `fmcg local up`)")
    os.environ.update(local_environment(stack.endpoint_url))
    return stack


def ensure_up(
    template: Path = DEFAULT_TEMPLATE, stack_name: str = DEFAULT_STACK_NAME
) -> LocalStack:
    """Return the running local stack, starting and provisioning one if there is none."""
    try:
        return current_stack()
    except ConfigurationError:
        pass
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    pid, url = start_server(log_path=directory / "emulator.log")
    try:
        stack = LocalStack.create(url, stack_name=stack_name, template_path=template, pid=pid)
    except BaseException:
        stop_server(pid)
        raise
    stack.save(state_file())
    os.environ.update(local_environment(stack.endpoint_url))
    return stack


@app.command()
def up(
    template: Annotated[Path, typer.Option(help="SAM template to provision from.")] = (
        DEFAULT_TEMPLATE
    ),
    stack_name: Annotated[str, typer.Option(help="Stack name (prefix of every name).")] = (
        DEFAULT_STACK_NAME
    ),
) -> None:
    """Start the emulator in the background and provision every resource of the template."""
    stack = ensure_up(template, stack_name)
    emulated = sum(r.emulated for r in stack.resources.values())
    err_console.print(
        f"[green]up[/] {stack.endpoint_url} (pid {stack.pid}): {emulated} resources provisioned"
        f" from {stack.template_path}; state in {state_file()}"
    )


@app.command()
def down() -> None:
    """Stop the emulator and forget its state."""
    path = state_file()
    try:
        stack = LocalStack.load(path)
    except ConfigurationError:
        err_console.print("nothing to stop")
        return
    if stack.pid is not None:
        stop_server(stack.pid)
    path.unlink(missing_ok=True)
    # Consumer checkpoints name sequence numbers of streams that no longer exist.
    shutil.rmtree(state_dir() / "checkpoints", ignore_errors=True)
    err_console.print(f"[green]down[/] {stack.endpoint_url}")


@app.command()
def status() -> None:
    """Print AWS_ENDPOINT_URL and every resource name as ``export NAME=value`` lines."""
    stack = current_stack()
    for name, value in stack.environment().items():
        console.print(f"export {name}={value}", highlight=False, soft_wrap=True)


@app.command()
def invoke(
    logical_id: Annotated[str, typer.Argument(help="Function logical id in the template.")],
    event: Annotated[Path, typer.Option(help="JSON event file.", exists=True)],
) -> None:
    """Run a template function from its built artifacts with the template's environment.

    Prints the response, or Lambda's error document (and exits 1) when the function fails.
    """
    from pipeline.local.invoke import FunctionError, invoke_function

    stack = current_stack()
    try:
        response = invoke_function(stack, logical_id, json.loads(event.read_text()))
    except FunctionError as e:
        console.print_json(json.dumps(e.payload))
        raise typer.Exit(1) from e
    console.print_json(json.dumps(response, default=str))
