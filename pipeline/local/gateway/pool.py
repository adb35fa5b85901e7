"""The function's warm instances behind the gateway, as Lambda keeps containers."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipeline.local.invoke import Handler


class HandlerPool:
    """Up to ``size`` handler instances, each serving one request at a time (like containers)."""

    def __init__(self, factory: Callable[[], Handler], size: int, *, owned: bool = True) -> None:
        self._factory = factory
        self._owned = owned  # whether close() stops the instances (not a caller's handler)
        self._idle: queue.LifoQueue[Handler] = queue.LifoQueue()
        self._slots = threading.Semaphore(size)
        self._lock = threading.Lock()
        self._built: list[Handler] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run ``event`` on an idle instance, building one if the pool is not full."""
        with self._slots:
            try:
                handler = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:  # imports are not safe to run concurrently
                    handler = self._factory()
                    if self._owned:
                        self._built.append(handler)
            try:
                return handler(event, None)
            finally:
                self._idle.put(handler)

    def close(self) -> None:
        """Stop the instances this pool built (their worker processes), if they can be."""
        with self._lock:
            built, self._built = self._built, []
        for handler in built:
            close = getattr(handler, "close", None)
            if close is not None:
                close()


__all__ = ["HandlerPool"]
