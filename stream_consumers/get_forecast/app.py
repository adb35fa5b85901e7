"""GetForecastFunction: the REST API behind API Gateway's Cognito authorizer.

Wiring only: settings are read once at import (the template sets the variables), the
resolver is built once, AWS clients are built on first use and reused by warm invocations,
and every request goes through :func:`pipeline.api.handle` (authorise by group, then
route). Neither pandas nor pyarrow is imported here: the API must start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from pipeline.api import ApiClients, build_resolver, handle
from pipeline.aws_errors import client
from pipeline.settings import ApiSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
settings = ApiSettings.from_env()


def _client(service: str) -> Any:
    # boto3 is imported on first use: it is most of a cold start (~0.2 s) and
    # /openapi.json never needs it.
    import boto3

    # A call slower than this answers 503 before the function's 10 s timeout would.
    return client(
        boto3.session.Session(), service, max_attempts=3, connect_timeout=2, read_timeout=8
    )


# Its own logger: the audit records of /users changes land in the function's log.
app = build_resolver(settings, ApiClients(_client), audit_logger=logger)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway REST proxy event in, proxy response out."""
    return handle(app, event, context)
