"""Run a template function from its built artifacts, like ``sam local invoke`` without Docker.

:func:`load_handler` finds the function's built code and the layer in
``build/local/lambda`` (building them first when missing or stale, see
:func:`pipeline.packaging.local_lambda_artifacts`) and returns a :class:`LocalFunction`:
a callable that runs the handler in warm worker processes whose import path holds that code,
that layer and the standard library only (:mod:`pipeline.local.worker`). The working tree
is never on it, so a module missing from the artifact fails here as it would on AWS.

Each worker gets the environment Lambda would give the function: the variables the template
sets, the runtime's own (``AWS_LAMBDA_FUNCTION_NAME``, ``LAMBDA_TASK_ROOT``, ...), and the
emulator's endpoint and credentials instead of a role.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigurationError
from pipeline.local.template import ACCOUNT_ID, REGION
from pipeline.local.worker import FunctionError, FunctionTimeout, LocalFunction, WorkerSpec
from pipeline.packaging.functions import function_spec

if TYPE_CHECKING:
    from types import ModuleType

    from pipeline.local.stack import LocalStack
    from pipeline.packaging.functions import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]
#: Variables of this process the workers keep: the locale (Lambda sets its own).
_INHERITED = ("LANG", "LC_ALL", "LC_CTYPE")


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_s: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def handler_location(stack: LocalStack, logical_id: str) -> tuple[Path, str]:
    """The handler's source file in the working tree and its function name.

    For tests that drive a handler in-process; :func:`load_handler` runs the built one.
    """
    spec = function_spec(stack.template, Path(stack.template_path), logical_id)
    if not spec.handler_file.is_file():
        raise ConfigurationError(f"handler file {spec.handler_file} of {logical_id} does not exist")
    return spec.handler_file, spec.handler.rpartition(".")[2]


def import_handler_module(path: Path, name: str | None = None) -> ModuleType:
    """Import a handler's source file by path, as the Lambda runtime imports ``app.py``.

    For tests and benchmarks that drive a handler in-process (:func:`handler_location`
    finds the file). Each call imports afresh under ``name`` (default: a new unique name),
    so module-level state is a cold start's; the module stays in ``sys.modules`` (which
    dataclasses and pickling need) until the caller pops ``module.__name__``.
    """
    name = name or f"handler_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def function_env(stack: LocalStack, logical_id: str) -> dict[str, str]:
    """The emulator's endpoint and credentials, and the variables the template sets."""
    from pipeline.local.emulator import local_environment

    return {
        **local_environment(stack.endpoint_url),
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        **stack.function_environment(logical_id),
    }


def runtime_environment(spec: FunctionSpec, code_dir: Path) -> dict[str, str]:
    """The variables Lambda's runtime sets in every execution environment."""
    return {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": spec.handler,
        "TZ": "UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **{k: os.environ[k] for k in _INHERITED if k in os.environ},
    }


def load_handler(
    stack: LocalStack, logical_id: str, *, build_dir: Path | None = None
) -> LocalFunction:
    """The function ``logical_id`` of the stack's template, run from its built artifacts.

    Workers start on the first invocation (the cold start), under the function's
    environment and ``Timeout``; ``close()`` the result (or use it as a context manager)
    to stop them, or they stop when this process exits.
    """
    from pipeline.packaging import local_lambda_artifacts

    template_path = Path(stack.template_path)
    spec = function_spec(stack.template, template_path, logical_id)
    artifacts = local_lambda_artifacts(build_dir, template_path=template_path)
    code_dir = artifacts.code_dir(logical_id)
    return LocalFunction(
        WorkerSpec(
            function=logical_id,
            code_dir=code_dir,
            layers=(artifacts.layer_python,),
            handler=spec.handler,
            environment={**runtime_environment(spec, code_dir), **function_env(stack, logical_id)},
            timeout_s=float(spec.timeout_s),
            invoked_function_arn=LocalContext(logical_id).invoked_function_arn,
        )
    )


def invoke_function(
    stack: LocalStack, logical_id: str, event: dict[str, Any], *, build_dir: Path | None = None
) -> Any:
    """Run the function once on ``event`` (a cold start) and return its response.

    A function error raises :class:`FunctionError`, whose ``payload`` is Lambda's error
    document.
    """
    with load_handler(stack, logical_id, build_dir=build_dir) as function:
        return function(event)


__all__ = [
    "FunctionError",
    "FunctionTimeout",
    "Handler",
    "LocalContext",
    "LocalFunction",
    "function_env",
    "handler_location",
    "import_handler_module",
    "invoke_function",
    "load_handler",
    "patched_environ",
    "runtime_environment",
]
