"""Local Lambda execution environments: one worker process per container, kept warm.

A :class:`FunctionWorker` is one ``python -I -S`` process running
``pipeline/local/lambda_bootstrap.py`` over a function's built code and layer, nothing else
on its import path. It serves one invocation at a time and stays alive between them, as a
Lambda container does (module state, clients and caches survive; the import is paid once).
A :class:`LocalFunction` holds as many workers as invocations run concurrently, as Lambda
scales containers.

What Lambda does, the worker does:

- a handler exception answers an error (``errorMessage``, ``errorType``, ``stackTrace``);
  the worker stays warm;
- a response that is not JSON answers ``Runtime.MarshalError``; the worker stays warm;
- an invocation over the function's ``Timeout`` answers ``Sandbox.Timedout``, and the
  worker is killed (the next invocation starts cold); as Lambda's init phase, a cold start
  has its own limit (:data:`INIT_TIMEOUT_S`, or the ``Timeout`` when longer: Lambda then
  re-runs a slow init within the invocation) and the ``Timeout`` starts after it;
- a worker that dies (``sys.exit``, a crash) answers ``Runtime.ExitError``;
- the handler's stdout reaches ``sys.stdout`` of the thread that invoked, line by line,
  so the poller's per-thread capture of EMF lines and logs works as with an in-process
  handler.
"""

from __future__ import annotations

import atexit
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline.aws_errors import INVALID_REQUEST_CONTENT
from pipeline.errors import PipelineError, TransientError

if TYPE_CHECKING:
    from collections.abc import Mapping

BOOTSTRAP: Final = Path(__file__).resolve().with_name("lambda_bootstrap.py")
#: Lambda's limit on the init phase (the interpreter and the handler's module loading).
INIT_TIMEOUT_S: Final = 10.0
#: How long a worker gets to exit after its stdin closes, before it is killed.
_EXIT_GRACE_S: Final = 2.0
_LIVE: weakref.WeakSet[FunctionWorker] = weakref.WeakSet()


class FunctionError(PipelineError):
    """The function answered an error: its ``errorType``, ``errorMessage`` and stack trace."""

    def __init__(self, function: str, error: Mapping[str, Any]) -> None:
        self.function = function
        self.error_type = str(error.get("errorType", ""))
        self.error_message = str(error.get("errorMessage", ""))
        self.stack_trace = [str(line) for line in error.get("stackTrace") or []]
        trace = "".join(self.stack_trace)
        detail = f"\nTraceback in the function (most recent call last):\n{trace}" if trace else ""
        super().__init__(f"{function}: {self.error_type}: {self.error_message}{detail}")

    @property
    def payload(self) -> dict[str, Any]:
        """The error document Lambda returns to a synchronous invoker."""
        return {
            "errorMessage": self.error_message,
            "errorType": self.error_type,
            "stackTrace": self.stack_trace,
        }


class FunctionTimeout(FunctionError, TransientError):
    """The invocation ran past the function's ``Timeout``; its worker was killed."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker runs: the built code directory, the layers, the handler, the limits."""

    function: str
    code_dir: Path
    layers: tuple[Path, ...]
    handler: str
    environment: Mapping[str, str]
    timeout_s: float
    invoked_function_arn: str


class FunctionWorker:
    """One warm execution environment of a function (one invocation at a time)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our bootstrap
            [
                sys.executable,
                "-I",
                "-S",
                str(BOOTSTRAP),
                str(spec.code_dir),
                spec.handler,
                *(str(layer) for layer in spec.layers),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(spec.environment),
            cwd=spec.code_dir,
        )
        self._reader = threading.Thread(
            target=self._read, name=f"worker-{spec.function}", daemon=True
        )
        self._reader.start()
        self._initialised = False
        _LIVE.add(self)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """Run the handler on ``event``; its response, or a :class:`FunctionError`."""
        request_id = request_id or str(uuid.uuid4())
        if not self._initialised:
            limit = max(INIT_TIMEOUT_S, self.spec.timeout_s)
            self._await("init", time.monotonic() + limit, request_id, limit)
            self._initialised = True
        # The function's timeout runs from here: the cold start had its own.
        deadline = time.monotonic() + self.spec.timeout_s
        try:
            body = json.dumps(
                {
                    "event": event,
                    "request_id": request_id,
                    "deadline_ms": int(time.time() * 1000 + self.spec.timeout_s * 1000),
                    "invoked_function_arn": self.spec.invoked_function_arn,
                }
            )
        except (TypeError, ValueError) as e:
            raise FunctionError(
                self.spec.function,
                {
                    "errorType": INVALID_REQUEST_CONTENT,
                    "errorMessage": f"Could not parse request body into json: {e}",
                },
            ) from e
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(body.encode() + b"\n")
            self._process.stdin.flush()
        except OSError:
            pass  # the worker is gone: what _await reads next says how it ended
        return self._await("result", deadline, request_id)

    def _await(
        self, kind: str, deadline: float, request_id: str, limit_s: float | None = None
    ) -> Any:
        limit = self.spec.timeout_s if limit_s is None else limit_s
        while True:
            try:
                message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise FunctionTimeout(
                    self.spec.function,
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
                        f"{limit:.2f} seconds",
                    },
                ) from None
            if message is None:
                status = self._process.wait()
                raise FunctionError(
                    self.spec.function,
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with "
                        f"error: exit status {status}",
                    },
                )
            if message["type"] == "stdout":
                # The invoking thread's stdout: the poller captures it per thread.
                sys.stdout.write(message["text"])
                continue
            if message["type"] == "error":
                raise FunctionError(self.spec.function, message["error"])
            if message["type"] == kind:
                return message.get("response")
            raise FunctionError(
                self.spec.function,
                {"errorType": "Runtime.Unknown", "errorMessage": f"unexpected {message!r}"},
            )

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._messages.put(json.loads(line))
        self._messages.put(None)

    def kill(self) -> None:
        self._process.kill()
        self._process.wait()

    def close(self) -> None:
        """Let the worker exit (its stdin closes), killing it if it does not."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.close()
                self._process.wait(timeout=_EXIT_GRACE_S)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        _LIVE.discard(self)


class LocalFunction:
    """A function's handler as a callable, run in warm workers (one per concurrent call)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._idle: list[FunctionWorker] = []
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, event: Any, context: Any = None) -> Any:
        worker = self._acquire()
        request_id = getattr(context, "aws_request_id", None)
        try:
            return worker.invoke(event, request_id)
        finally:
            self._release(worker)

    def _acquire(self) -> FunctionWorker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
        return FunctionWorker(self.spec)

    def _release(self, worker: FunctionWorker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
                return
        worker.close()

    @property
    def workers(self) -> int:
        """Warm workers (idle ones; a worker in an invocation is not counted)."""
        with self._lock:
            return sum(w.alive for w in self._idle)

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when their invocation returns."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    def __enter__(self) -> LocalFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for worker in list(_LIVE):
        worker.close()


__all__ = ["FunctionError", "FunctionTimeout", "FunctionWorker", "LocalFunction", "WorkerSpec"]
