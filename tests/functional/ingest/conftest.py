"""Fixtures of the ingest functional tests: the handler loaded under its template env."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

from pipeline.local.invoke import handler_location, import_handler_module

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from pipeline.local.stack import LocalStack

FUNCTION = "IngestStreamFunction"


@pytest.fixture
def ingest_app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``app.py`` imported by path with IngestStreamFunction's environment, as Lambda does."""
    for name, value in stack.function_environment(FUNCTION).items():
        monkeypatch.setenv(name, value)
    assert os.environ["AWS_ENDPOINT_URL"] == stack.endpoint_url
    module = import_handler_module(handler_location(stack, FUNCTION)[0])
    yield module
    sys.modules.pop(module.__name__, None)
