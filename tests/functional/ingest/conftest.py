"""Fixtures of the ingest functional tests: the handler loaded under its template env."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from pipeline.local.stack import LocalStack

HANDLER_PATH = Path(__file__).parents[3] / "stream_consumers" / "ingest_stream" / "app.py"


@pytest.fixture
def ingest_app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``app.py`` imported by path with IngestStreamFunction's environment, as Lambda does."""
    for name, value in stack.function_environment("IngestStreamFunction").items():
        monkeypatch.setenv(name, value)
    assert os.environ["AWS_ENDPOINT_URL"] == stack.endpoint_url
    name = f"ingest_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, HANDLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)
