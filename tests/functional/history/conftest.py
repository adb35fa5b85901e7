"""Fixtures of the history import tests: the compaction tests' stack, session and lake."""

from tests.functional.compaction.conftest import lake, session, shared_stack

__all__ = ["lake", "session", "shared_stack"]
