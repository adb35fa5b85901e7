"""One local Lambda function's process: ``python -I -S lambda_bootstrap.py CODE HANDLER LAYER...``.

Standard library only, and nothing of the repository on the import path: ``-I`` leaves
this file's directory, the current directory and every ``PYTHON*`` variable out, ``-S``
leaves site-packages out, and the path becomes the function's code directory, then each
layer's ``python`` directory, then the standard library, as ``/var/task`` and
``/opt/python`` come first on Lambda. A module the artifact lacks fails to import here as
it does there.

It speaks JSON lines with the parent (:mod:`pipeline.local.worker`) on two private file
descriptors; the handler's own stdout, its EMF metric lines and JSON logs, travels as
``{"type": "stdout"}`` messages so the parent can hand it to whoever invoked:

- worker -> parent, once: ``{"type": "init"}``, or ``{"type": "error", "error": ...}``
  and exit when the handler cannot be loaded;
- parent -> worker: ``{"event": ..., "request_id": ..., "deadline_ms": ..., ...}``;
- worker -> parent: any ``{"type": "stdout", "text": ...}``, then ``{"type": "result",
  "response": ...}`` or ``{"type": "error", "error": {errorMessage, errorType, ...}}``.

Errors have the shape and the ``errorType`` values of Lambda's Python runtime
(``Runtime.ImportModuleError``, ``Runtime.MarshalError``, the exception's class name).
"""

from __future__ import annotations

import decimal
import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
from typing import IO, Any


class _Channel:
    """The messages to the parent, one JSON object per line, from any thread."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message))

    def send_line(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class _Stdout(io.TextIOBase):
    """``sys.stdout`` of the handler: complete lines go to the parent as they are written."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                complete, _, self._pending = self._pending.rpartition("\n")
                self._channel.send({"type": "stdout", "text": complete + "\n"})
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._channel.send({"type": "stdout", "text": self._pending})
                self._pending = ""


class _Context:
    """The attributes of Lambda's context object."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.aws_request_id: str = request["request_id"]
        self.function_name: str = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version: str = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb: str = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name: str = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name: str = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn: str = request["invoked_function_arn"]
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms: int = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(message: str, error_type: str, stack: list[str], request_id: str = "") -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack,
    }


def _user_frames(tb: Any) -> list[str]:
    """The traceback from the first frame that is not this file's (as the runtime trims it)."""
    frames = traceback.extract_tb(tb)
    while frames and frames[0].filename == __file__:
        frames.pop(0)
    return traceback.format_list(frames)


def _load(handler: str) -> Any:
    module_name, _, function = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise _Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}"
        ) from e
    except SyntaxError as e:
        raise _Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}"
        ) from e
    try:
        return getattr(module, function)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{function}' missing on module '{module_name}'"
        ) from None


class _Fault(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _decimal(value: Any) -> Any:
    # The runtime writes a Decimal as the number it is (DynamoDB items are full of them).
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _marshal(response: Any) -> str:
    try:
        return json.dumps(response, default=_decimal, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {e}") from e


def main(argv: list[str]) -> int:
    code_dir, handler_name, *layers = argv[1:]
    # The protocol gets private copies of stdin and stdout; fd 0 then reads nothing (so does
    # sys.stdin, which reads fd 0) and fd 1 goes to stderr: neither a handler nor a library
    # can corrupt the protocol.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    channel = _Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    stdout = _Stdout(channel)
    sys.stdout = stdout
    sys.path[:0] = [code_dir, *layers]
    os.chdir(code_dir)

    try:
        handler = _load(handler_name)
    except _Fault as fault:
        stdout.flush()
        channel.send({"type": "error", "error": _error(fault.message, fault.error_type, [])})
        return 1
    except Exception as e:  # noqa: BLE001 - an init error is reported, whatever it is
        stdout.flush()
        error = _error(str(e), type(e).__name__, _user_frames(e.__traceback__))
        channel.send({"type": "error", "error": error})
        return 1
    stdout.flush()
    channel.send({"type": "init"})

    for line in requests:
        request = json.loads(line)
        request_id = request["request_id"]
        try:
            body = _marshal(handler(request["event"], _Context(request)))
        except _Fault as fault:
            reply: dict[str, Any] = {
                "type": "error",
                "error": _error(fault.message, fault.error_type, [], request_id),
            }
        except Exception as e:  # noqa: BLE001 - the handler's error goes to the invoker
            error = _error(str(e), type(e).__name__, _user_frames(e.__traceback__), request_id)
            reply = {"type": "error", "error": error}
        else:
            stdout.flush()
            channel.send_line('{"type": "result", "response": ' + body + "}")
            continue
        stdout.flush()
        channel.send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
