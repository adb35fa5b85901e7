"""Fixtures of the KCL tests: an h2c-capable emulator of their own and a stack on it.

The KCL's Kinesis client speaks HTTP/2, which the session-wide moto (werkzeug) server does
not, so these tests start the same moto application under Hypercorn.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from pipeline.kcl import h2c_server
from pipeline.local.emulator import stop_server
from pipeline.local.stack import LocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def h2c_emulator_url() -> Iterator[str]:
    pid, url = h2c_server.start()
    try:
        yield url
    finally:
        stop_server(pid)


@pytest.fixture
def kcl_stack(h2c_emulator_url: str) -> LocalStack:
    return LocalStack.create(h2c_emulator_url, stack_name=f"k{uuid.uuid4().hex[:10]}")
