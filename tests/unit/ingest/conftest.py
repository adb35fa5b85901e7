"""Fixtures of the ingest unit tests."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from typing import TYPE_CHECKING

import pytest
from ingest_factories import HANDLER_PATH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Import ``stream_consumers/ingest_stream/app.py`` by path, as the Lambda runtime does."""
    loaded: list[str] = []

    def load(**env: str) -> ModuleType:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        name = f"ingest_app_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, HANDLER_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        loaded.append(name)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)
