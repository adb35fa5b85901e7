"""Fixtures of the compaction tests: one stack per module, a fresh lake per test."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from pipeline.local.stack import LocalStack
from tests.support.compaction_lake import Lake, fresh_lake

if TYPE_CHECKING:
    import boto3


@pytest.fixture(scope="module")
def shared_stack(emulator_url: str) -> LocalStack:
    return LocalStack.create(emulator_url, stack_name=f"c{uuid.uuid4().hex[:10]}")


@pytest.fixture
def session(shared_stack: LocalStack) -> boto3.session.Session:
    return shared_stack.session()


@pytest.fixture
def lake(shared_stack: LocalStack, session: boto3.session.Session) -> Lake:
    return fresh_lake(shared_stack, session)
