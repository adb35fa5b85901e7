"""One error root for the whole pipeline.

Every stage raises subclasses of :class:`PipelineError`. The two branches tell a caller what
to do: a :class:`TransientError` may succeed when retried (the platform retries it: Lambda
re-delivers the batch, Glue re-runs the job), a :class:`TerminalError` never will (a poison
record goes to quarantine with its reason code, a bad request gets a 4xx). Adapters
translate ``botocore`` errors into these with ``raise ... from e`` so the core never
inspects AWS error codes.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class TransientError(PipelineError):
    """A failure that may go away on retry (5xx, throttling, timeouts)."""


class TerminalError(PipelineError):
    """A failure that retrying cannot fix (bad data, bad configuration, bad request)."""


class RejectedRecord(TerminalError):
    """A record that breaks the contract; it is quarantined with ``reason`` and never retried."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ConfigurationError(TerminalError):
    """A missing or invalid setting (environment variable, template, state file)."""


class NotFoundError(TerminalError):
    """A resource or item the caller asked for does not exist."""


class InvalidInputError(TerminalError):
    """Input a caller gave (an argument, a file, a query) that cannot be used as it is."""


__all__ = [
    "ConfigurationError",
    "InvalidInputError",
    "NotFoundError",
    "PipelineError",
    "RejectedRecord",
    "TerminalError",
    "TransientError",
]
