"""The handler's stdout: captured per invocation, appended to a log, searched for stream lag.

Each invocation's stdout (EMF metric lines, Powertools JSON logs) is captured on its own
thread, so that concurrent invocations (one per shard) keep their lines apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LAG_METRIC: Final = "StreamLagMilliseconds"


class StdoutRouter(io.TextIOBase):
    """``sys.stdout`` while invocations run: each thread's writes go to its own buffer.

    Concurrent invocations (one per shard) must not mix their output, which a process-wide
    ``redirect_stdout`` would. Installed while at least one capture is active; a thread
    without one (the caller, or a thread the handler starts) writes to the stream that was
    stdout before. Logging handlers bound to stdout are rebound too: Powertools Logger binds
    ``sys.stdout`` when the handler module is imported, so swapping ``sys.stdout`` alone
    would miss its JSON lines.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._active = 0
        self._previous: TextIO = sys.stdout
        self._rebound: list[tuple[logging.StreamHandler[Any], Any]] = []

    def _target(self) -> TextIO:
        buffer: TextIO | None = getattr(self._local, "buffer", None)
        return self._previous if buffer is None else buffer

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    @contextlib.contextmanager
    def capture(self, buffer: io.StringIO) -> Iterator[None]:
        """Send this thread's stdout to ``buffer`` for the duration."""
        outer = getattr(self._local, "buffer", None)
        self._local.buffer = buffer
        with self._lock:
            if not self._active:
                self._install()
            self._active += 1
        try:
            yield
        finally:
            self._local.buffer = outer
            with self._lock:
                self._active -= 1
                if not self._active:
                    self._uninstall()

    def _install(self) -> None:
        self._previous = sys.stdout
        self._rebound = [
            (handler, handler.setStream(self))
            for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
            if isinstance(logger, logging.Logger)
            for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler)
            and handler.stream in (sys.stdout, sys.__stdout__)
        ]
        sys.stdout = cast("TextIO", self)

    def _uninstall(self) -> None:
        sys.stdout = self._previous
        for handler, stream in self._rebound:
            handler.setStream(stream)
        self._rebound = []


# One per process, as there is one ``sys.stdout``: two routers would each install over
# the other and restore the wrong stream.
_ROUTER: Final = StdoutRouter()


def capture_stdout(buffer: io.StringIO) -> contextlib.AbstractContextManager[None]:
    """Send this thread's stdout (and stdout-bound logging) to ``buffer`` for the duration."""
    return _ROUTER.capture(buffer)


class HandlerLog:
    """Appends each invocation's output (and traceback) to a file, if there is one.

    Thread-safe: shards append whole invocations, never interleaved lines.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, output: str, traceback: str | None) -> None:
        if self.path is None:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(output)
                if traceback:
                    f.write(traceback)


def lag_values(line: str) -> list[float]:
    """``StreamLagMilliseconds`` values in one EMF line (a number or a list of them)."""
    if LAG_METRIC not in line or not line.lstrip().startswith("{"):
        return []
    try:
        doc = json.loads(line)
    except ValueError:
        return []
    if not isinstance(doc, dict) or "_aws" not in doc:
        return []
    value = doc.get(LAG_METRIC)
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, int | float)]
