"""Shared fixtures: one emulator per test session, one freshly provisioned stack per test.

The emulator is the same moto server ``fmcg local up`` starts, reached over HTTP. Tests are
isolated by stack name: every test provisions the whole template under its own name, so
their streams, buckets and tables never meet.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest

from pipeline.local.emulator import local_environment, start_server, stop_server
from pipeline.local.stack import LocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """The endpoint of a moto server on 127.0.0.1, exported as ``AWS_ENDPOINT_URL``."""
    pid, url = start_server()
    saved = dict(os.environ)
    os.environ.update(local_environment(url))
    try:
        yield url
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop_server(pid)


@pytest.fixture
def stack(emulator_url: str) -> LocalStack:
    """Every resource of ``infra/template.yaml``, provisioned under a unique stack name."""
    return LocalStack.create(emulator_url, stack_name=f"t{uuid.uuid4().hex[:10]}")
