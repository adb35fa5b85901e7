"""Fixtures of the functional tests beyond the session emulator and the per-test stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.api_stack import api_stack

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.api_stack import Api


@pytest.fixture(scope="session")
def api(emulator_url: str) -> Iterator[Api]:
    """One stack, five users and the gateway, shared by every API test (each test uses its
    own SKUs and keys)."""
    shared = api_stack(emulator_url)
    try:
        yield shared
    finally:
        shared.gateway.stop()
