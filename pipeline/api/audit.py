"""The audit trail of group membership: one structured log record per change or refusal.

Each record goes through the function's Powertools ``Logger`` (JSON on stdout, so CloudWatch
Logs keeps it with the invocation's other lines), under the key ``audit``: who asked
(``actor``, the Cognito username and ``sub`` of the token API Gateway verified), whom it
concerns (``target``), the ``group``, the ``action`` (``add`` or ``remove``), the
``outcome`` (``applied`` or ``refused``) and API Gateway's ``request_id``, which ties the
record to the access log line of the same request. A refused attempt is recorded too: an
admin trying to grant AdminGroup is exactly what an audit should show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from pipeline.api.access import claims_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools import Logger

AUDIT_KEY: Final = "audit"
MEMBERSHIP_MESSAGE: Final = "group membership"

Action = Literal["add", "remove"]
Outcome = Literal["applied", "refused"]


@dataclass(frozen=True)
class Requester:
    """Who sent a request, as API Gateway's Cognito authorizer and request context say."""

    username: str
    sub: str
    request_id: str

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Requester:
        """The requester of a REST proxy event (empty strings for what it lacks)."""
        claims = claims_of(event)
        context = event.get("requestContext")
        request_id = context.get("requestId", "") if isinstance(context, dict) else ""
        return cls(
            username=str(claims.get("cognito:username", "")),
            sub=str(claims.get("sub", "")),
            request_id=str(request_id),
        )


@dataclass(frozen=True)
class MembershipAudit:
    """Writes the audit records of one request's membership change to ``logger``."""

    logger: Logger
    requester: Requester

    def record(
        self,
        *,
        target: str,
        group: str,
        action: Action,
        outcome: Outcome,
        **detail: Any,
    ) -> dict[str, Any]:
        """Log one record (``detail`` adds fields, e.g. ``reason``); returns what was logged."""
        entry = {
            "actor": self.requester.username,
            "actor_sub": self.requester.sub,
            "target": target,
            "group": group,
            "action": action,
            "outcome": outcome,
            "request_id": self.requester.request_id,
            **detail,
        }
        self.logger.info(MEMBERSHIP_MESSAGE, extra={AUDIT_KEY: entry})
        return entry


__all__ = ["AUDIT_KEY", "MEMBERSHIP_MESSAGE", "MembershipAudit", "Requester"]
