"""schemathesis against the generated spec, through the local gateway, with an Admin token.

Every operation gets schema-conforming (positive) and schema-breaking (negative) requests;
at least 500 in total, and none may answer a 5xx: a client's mistake is always a 4xx.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

if TYPE_CHECKING:
    from tests.support.api_stack import Api

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION_AND_MODE = 45


Sent = list[tuple[str, GenerationMode, int]]


def _fuzz(
    operation: Any, mode: GenerationMode, api: Api, sent: Sent, server_errors: list[Any]
) -> None:
    """Send ``EXAMPLES_PER_OPERATION_AND_MODE`` generated requests to one operation."""
    headers = {"Authorization": str(api.tokens["admin"])}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: Any) -> None:
        response = case.call(base_url=api.url, headers=headers, timeout=30)
        sent.append((case.operation.label, mode, response.status_code))
        if response.status_code >= 500:
            server_errors.append(
                {
                    "operation": case.operation.label,
                    "status": response.status_code,
                    "query": case.query,
                    "path": case.path_parameters,
                    "body": json.dumps(case.body, default=str)[:200],
                    "answer": response.text[:200],
                }
            )

    exercise()


def test_given_the_generated_spec_when_fuzzed_then_no_request_gets_a_5xx(api: Api) -> None:
    status, spec = api.call("GET", "/openapi.json", caller=None)
    assert status == 200
    schema = schemathesis.openapi.from_dict(spec)
    sent: Sent = []
    server_errors: list[dict[str, Any]] = []

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, api, sent, server_errors)

    assert server_errors == []
    assert len(sent) >= 500
    # Admin may call everything: valid tokens only meet answers about the input. (Negative
    # cases may also break the Authorization header itself, hence their 401s.)
    # The one 403 an admin may meet is about the input too: granting AdminGroup.
    sent = [s for s in sent if (s[0], s[2]) != ("PUT /users/{username}/groups/{group}", 403)]
    positive = {(label, code) for label, m, code in sent if m is GenerationMode.POSITIVE}
    assert {code for _, code in positive} <= {200, 201, 400, 404, 409}, positive
    everything = {(label, code) for label, _, code in sent}
    assert {code for _, code in everything} <= {200, 201, 400, 401, 404, 409}, everything
    # Operations without parameters always succeed: the token really was accepted.
    assert {label for label, _, code in sent if code == 200} >= {"GET /admin/status", "GET /users"}
