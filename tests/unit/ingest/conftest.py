"""Fixtures of the ingest unit tests."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from pipeline.local.invoke import import_handler_module
from tests.support.ingest_factories import HANDLER_PATH

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
        module = import_handler_module(HANDLER_PATH)
        loaded.append(module.__name__)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)
