"""The API's refusals of a request: each is terminal (retrying cannot fix it) and has a status code.

The resolver turns them into ``{"message": ...}`` responses with that code, so a client's
mistake is always a 4xx with a sentence saying what to fix, never a 500.
"""

from __future__ import annotations

from typing import ClassVar

from pipeline.errors import NotFoundError, TerminalError


class RequestError(TerminalError):
    """A request the API refuses; ``status`` is the HTTP status code of the answer."""

    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(RequestError):
    """Input that breaks the contract (dates, ranges, ids, bodies, tokens)."""

    status = 400


class Forbidden(RequestError):
    """The caller's groups do not grant the route."""

    status = 403


class NotFound(RequestError, NotFoundError):
    """The user or group named in the path does not exist."""

    status = 404


class Conflict(RequestError):
    """An ``Idempotency-Key`` reused with a different body."""

    status = 409


__all__ = ["BadRequest", "Conflict", "Forbidden", "NotFound", "RequestError"]
