"""``fmcg local up | down | status | invoke``: the embedded AWS emulator."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pipeline.cli.console import console, err_console
from pipeline.errors import ConfigurationError, InvalidInputError
from pipeline.local.emulator import (
    is_emulator,
    is_running,
    local_environment,
    start_server,
    stop_server,
)
from pipeline.local.stack import (
    DEFAULT_STACK_NAME,
    LocalStack,
    check_stack_name,
    private_state_dir,
    state_dir,
)
from pipeline.local.template import DEFAULT_TEMPLATE, load_template

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
    # Not only "is the pid alive": after a reboot it can be any process's.
    if stack.pid is not None and not is_emulator(stack.pid, stack.endpoint_url):
        raise ConfigurationError("the local emulator is not running (run `fmcg local up`)")
    os.environ.update(local_environment(stack.endpoint_url))
    return stack


def ensure_up(
    template: Path = DEFAULT_TEMPLATE, stack_name: str = DEFAULT_STACK_NAME
) -> LocalStack:
    """Return the running local stack, starting and provisioning one if there is none.

    The arguments are checked first: a typo is an error, not an emulator started for
    nothing.
    """
    check_stack_name(stack_name)
    load_template(template)
    try:
        return current_stack()
    except ConfigurationError:
        pass
    directory = private_state_dir()
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
    if (stack.stack_name, stack.template_path) != (stack_name, str(template.resolve())):
        raise ConfigurationError(
            f"the emulator is already up with stack {stack.stack_name!r} from "
            f"{stack.template_path}; run `fmcg local down` first to use another"
        )
    emulated = sum(r.emulated for r in stack.resources.values())
    err_console.print(
        f"[green]up[/] {stack.endpoint_url} (pid {stack.pid}): {emulated} resources provisioned"
        f" from {escape(stack.template_path)}; state in {escape(str(state_file()))}"
    )


@app.command()
def down() -> None:
    """Stop the emulator and forget its state."""
    path = state_file()
    if not path.exists() and not path.is_symlink():
        err_console.print("nothing to stop")
        return
    stack = LocalStack.load(path)  # a state file that is not safe to act on is an error
    if stack.pid is not None:
        if is_emulator(stack.pid, stack.endpoint_url):
            stop_server(stack.pid)
        elif _exists(stack.pid):
            # A pid from a state file is signalled only if it is the emulator: after a
            # reboot, or in a file someone else wrote, it can be any process.
            err_console.print(
                f"[yellow]process {stack.pid} is not the emulator on {stack.endpoint_url}; "
                "not signalled[/]"
            )
        else:
            err_console.print(f"the emulator (pid {stack.pid}) had already stopped")
    path.unlink(missing_ok=True)
    # Consumer checkpoints name sequence numbers of streams that no longer exist.
    shutil.rmtree(state_dir() / "checkpoints", ignore_errors=True)
    err_console.print(f"[green]down[/] {stack.endpoint_url}")


@app.command()
def status() -> None:
    """Print AWS_ENDPOINT_URL and every resource name as ``export NAME=value`` lines."""
    stack = current_stack()
    for name, value in stack.environment().items():
        # Quoted for the shell that evaluates them; echoed, not printed by rich, which
        # would read markup and emoji codes in the values.
        typer.echo(f"export {name}={shlex.quote(value)}")


def _exists(pid: int) -> bool:
    try:
        return is_running(pid)
    except ConfigurationError:  # someone else's process
        return True


@app.command()
def invoke(
    logical_id: Annotated[str, typer.Argument(help="Function logical id in the template.")],
    event: Annotated[Path, typer.Option(help="JSON event file.", exists=True, dir_okay=False)],
) -> None:
    """Run a template function from its built artifacts with the template's environment.

    Prints the response, or one line naming the function's error (and exits 1).
    """
    from pipeline.local.invoke import FunctionError, invoke_function

    payload = read_event(event)
    stack = current_stack()
    try:
        response = invoke_function(stack, logical_id, payload)
    except FunctionError as e:  # the handler's own error, as Lambda reports it
        raise InvalidInputError(
            f"{logical_id} raised {e.error_type}: {e.error_message} (on the event in {event})"
        ) from e
    console.print_json(json.dumps(response, default=str))


def read_event(path: Path) -> dict[str, Any]:
    """The Lambda event in ``path``: a JSON object, or :class:`InvalidInputError`."""
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise InvalidInputError(f"cannot read event file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"event file {path} is not UTF-8 text: {e.reason}") from e
    except ValueError as e:
        raise InvalidInputError(f"event file {path} is not JSON: {e}") from e
    if not isinstance(payload, dict):
        raise InvalidInputError(
            f"event file {path} holds a JSON {type(payload).__name__}; a Lambda event is an object"
        )
    return payload
