"""Errors of the artifact build: all terminal (a rebuild of the same inputs fails the same way)."""

from __future__ import annotations

from pipeline.errors import TerminalError


class ArtifactError(TerminalError):
    """An artifact cannot be built from the sources as they are."""


class ArtifactTooLarge(ArtifactError):
    """A built artifact is over a limit of the service that would run it."""


__all__ = ["ArtifactError", "ArtifactTooLarge"]
