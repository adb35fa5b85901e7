"""Run a template function's handler in-process, like ``sam local invoke`` without Docker.

The handler file comes from the function's ``CodeUri`` and ``Handler``; it is imported
fresh, under the environment variables the template gives the function (plus the
emulator's endpoint and credentials), exactly as Lambda would start it.
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

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack

Handler = Callable[[dict[str, Any], Any], Any]
_REPO_ROOT = Path(__file__).resolve().parents[2]


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
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

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
    """The handler's source file and function name from ``CodeUri`` and ``Handler``."""
    spec = stack.template["Resources"].get(logical_id)
    if spec is None or spec["Type"] != "AWS::Serverless::Function":
        raise ConfigurationError(f"{logical_id} is not a function in {stack.template_path}")
    props = spec["Properties"]
    module, _, function = props["Handler"].rpartition(".")
    code_dir = (Path(stack.template_path).parent / props["CodeUri"]).resolve()
    path = code_dir / (module.replace(".", "/") + ".py")
    if not path.is_file():
        raise ConfigurationError(f"handler file {path} of {logical_id} does not exist")
    return path, function


def function_env(stack: LocalStack, logical_id: str) -> dict[str, str]:
    """Everything the function's process sees: emulator endpoint, credentials, template env."""
    from pipeline.local.emulator import local_environment

    return {
        **local_environment(stack.endpoint_url),
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        **stack.function_environment(logical_id),
    }


def load_handler(stack: LocalStack, logical_id: str) -> Handler:
    """Import the function's handler fresh, under its template environment.

    The returned callable also runs under that environment, so code that reads variables
    lazily sees the same values as code that read them at import.
    """
    path, function = handler_location(stack, logical_id)
    env = function_env(stack, logical_id)
    module_name = f"_fmcg_local_{logical_id}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # The Lambda layer puts the pipeline package on the path; locally the repo root does.
    if str(_REPO_ROOT) not in sys.path:
        sys.path.append(str(_REPO_ROOT))
    with patched_environ(env):
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    target: Handler = getattr(module, function)

    def invoke(event: dict[str, Any], context: Any = None) -> Any:
        with patched_environ(env):
            return target(event, context or LocalContext(function_name=logical_id))

    return invoke


def invoke_function(stack: LocalStack, logical_id: str, event: dict[str, Any]) -> Any:
    """Load the handler, run it once on ``event`` and return its response."""
    return load_handler(stack, logical_id)(event, None)
