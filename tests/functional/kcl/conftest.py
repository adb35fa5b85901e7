"""Fixtures of the KCL tests: a stack of their own on the session's emulator.

The emulator speaks HTTP/1.1 and h2c on one port (``pipeline.local.server``), which the
KCL's HTTP/2 Kinesis client needs.
"""

from __future__ import annotations

import uuid

import pytest

from pipeline.local.stack import LocalStack


@pytest.fixture
def kcl_stack(emulator_url: str) -> LocalStack:
    return LocalStack.create(emulator_url, stack_name=f"k{uuid.uuid4().hex[:10]}")
