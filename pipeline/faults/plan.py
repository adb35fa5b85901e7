"""What to break: fault rules per AWS operation, by rate (seeded) or by call number."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal[
    "server_error",
    "throttle",
    "read_timeout",
    "connect_timeout",
    "response_lost",
    "partial",
    "kill",
]

#: Faults that replace the HTTP exchange: the request never reaches the service, and
#: botocore's retry mode sees them as it would see the real thing (and may absorb them).
WIRE_KINDS: frozenset[str] = frozenset(
    {"server_error", "throttle", "read_timeout", "connect_timeout"}
)
#: Faults that act after the service applied the call: the caller sees a timeout
#: (``response_lost``) or the process dies (``kill``) although the write happened.
AFTER_KINDS: frozenset[str] = frozenset({"response_lost", "kill"})
#: Operations whose responses can report a partial failure.
PARTIAL_OPERATIONS: frozenset[str] = frozenset({"kinesis.PutRecords", "dynamodb.BatchWriteItem"})


@dataclass(frozen=True)
class FaultRule:
    """Break ``operation`` (``"<service>.<Operation>"``, e.g. ``"s3.PutObject"``).

    A call faults when its number (1-based, per operation and per phase: HTTP attempts
    for wire faults, API calls for the others) is in ``calls``, or with probability
    ``rate``; at most ``limit`` times (``None``: no bound). ``share`` is the fraction of
    the items a ``partial`` fault fails (at least one item always succeeds).
    """

    operation: str
    kind: FaultKind
    rate: float = 0.0
    calls: frozenset[int] = field(default_factory=frozenset)
    limit: int | None = None
    share: float = 0.5

    def __post_init__(self) -> None:
        service, _, name = self.operation.partition(".")
        if not service or not name:
            raise ValueError(f"operation must be '<service>.<Operation>': {self.operation!r}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1]: {self.rate}")
        if self.kind == "partial" and self.operation not in PARTIAL_OPERATIONS:
            raise ValueError(
                f"partial faults apply to {sorted(PARTIAL_OPERATIONS)}, not {self.operation}"
            )
        if not 0.0 < self.share <= 1.0:
            raise ValueError(f"share must be within (0, 1]: {self.share}")


@dataclass(frozen=True)
class FaultPlan:
    """A set of rules and the seed of the RNG that decides rate-based faults."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    def for_operation(self, operation: str) -> tuple[FaultRule, ...]:
        """The rules that apply to one operation (``"<service>.<Operation>"``)."""
        return tuple(r for r in self.rules if r.operation == operation)
