"""MOCK integrations of the template's REST API, answered as API Gateway answers them.

A mock method of ``FmcgApi``'s ``DefinitionBody`` never reaches a function: its request
template names a status code (``{"statusCode": 200}``), the integration response chosen for
that code (its key, a selection pattern, matching that code, else ``default``) gives the
status and the response template, and the template is rendered into the body. Only the
response template form the API uses is rendered
(:func:`pipeline.api.openapi_document.render`); any other is refused when the gateway
starts, not guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.api.openapi_document import render
from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class MockIntegration:
    """What one mock method answers: its status, content type and rendered body."""

    status: int
    content_type: str
    body: bytes

    @classmethod
    def from_swagger(cls, where: str, integration: Mapping[str, Any]) -> MockIntegration:
        """The answer of an ``x-amazon-apigateway-integration`` of type ``mock``."""
        try:
            request = json.loads(integration["requestTemplates"][JSON_TYPE])
            code = str(request["statusCode"])
            responses = integration["responses"]
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigurationError(f"{where}: mock integration without a status: {e}") from e
        # Keys are selection patterns matched against the status; "default" catches the rest.
        chosen = next(
            (
                r
                for pattern, r in responses.items()
                if pattern != "default" and re.fullmatch(pattern, code)
            ),
            responses.get("default"),
        )
        if not chosen:
            raise ConfigurationError(f"{where}: no integration response for status {code}")
        templates = chosen.get("responseTemplates") or {}
        if len(templates) != 1:
            raise ConfigurationError(f"{where}: expected one response template, got {templates}")
        ((content_type, template),) = templates.items()
        return cls(int(chosen["statusCode"]), str(content_type), render(str(template)).encode())


@dataclass(frozen=True)
class MockMethod:
    """A mock method of the API definition: ``method path``, public or not, and its answer."""

    method: str
    path: str
    public: bool
    answer: MockIntegration


def mock_methods(api_properties: Mapping[str, Any]) -> list[MockMethod]:
    """The mock methods of a ``AWS::Serverless::Api``'s inline ``DefinitionBody``."""
    body = api_properties.get("DefinitionBody") or {}
    methods = []
    for path, operations in (body.get("paths") or {}).items():
        for method, operation in operations.items():
            integration = operation.get("x-amazon-apigateway-integration") or {}
            if integration.get("type") != "mock":
                continue
            where = f"{method.upper()} {path}"
            methods.append(
                MockMethod(
                    method=method.upper(),
                    path=str(path),
                    # SAM's spelling of "Authorizer: NONE" in a definition.
                    public=operation.get("security") == [{"NONE": []}],
                    answer=MockIntegration.from_swagger(where, integration),
                )
            )
    return methods
