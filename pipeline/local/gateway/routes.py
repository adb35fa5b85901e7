"""The API's routes as the template declares them, and matching a request to one.

A route is a function's ``Api`` event on the REST API, or a mock method of the API's
``DefinitionBody`` (answered by the gateway itself, as API Gateway answers it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from pipeline.errors import ConfigurationError
from pipeline.local.mock_integration import MockIntegration, mock_methods

if TYPE_CHECKING:
    from collections.abc import Mapping

API_FUNCTION: Final = "GetForecastFunction"
REST_API: Final = "FmcgApi"


@dataclass(frozen=True)
class ApiRoute:
    """One route: method, resource template, public or not, and what answers it.

    A function's ``Api`` event names the function; a mock method of the API definition
    has ``mock`` set instead, and no function is invoked for it.
    """

    method: str
    resource: str
    public: bool
    function: str | None = API_FUNCTION
    mock: MockIntegration | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}/]+\})", self.resource)
        regex = "".join(
            f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
        )
        return re.compile(f"^{regex}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method path`` is this route, else ``None``."""
        if self.method not in (method, "ANY"):
            return None
        found = self.pattern.match(path)
        if found is None:
            return None
        return {k: unquote(v) for k, v in found.groupdict().items()}


def api_routes(template: Mapping[str, Any], rest_api: str = REST_API) -> list[ApiRoute]:
    """The routes of ``rest_api`` in the template: its functions' ``Api`` events and the
    mock methods of its ``DefinitionBody``."""
    routes = []
    for logical_id, spec in template["Resources"].items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (spec.get("Properties") or {}).get("Events", {}).values():
            props = event.get("Properties") or {}
            if event.get("Type") != "Api" or props.get("RestApiId", {"Ref": rest_api}) != {
                "Ref": rest_api
            }:
                continue
            authorizer = (props.get("Auth") or {}).get("Authorizer")
            routes.append(
                ApiRoute(
                    method=str(props["Method"]).upper(),
                    resource=str(props["Path"]),
                    public=authorizer == "NONE",
                    function=logical_id,
                )
            )
    if not routes:
        raise ConfigurationError(f"no function declares a route on {rest_api} in the template")
    api = template["Resources"].get(rest_api) or {}
    for mock in mock_methods(api.get("Properties") or {}):
        routes.append(
            ApiRoute(mock.method, mock.path, public=mock.public, function=None, mock=mock.answer)
        )
    return routes


def match_route(
    routes: list[ApiRoute], method: str, path: str
) -> tuple[ApiRoute, dict[str, str]] | None:
    """The route of ``method path`` and its path parameters (static routes win)."""
    for route in sorted(routes, key=lambda r: "{" in r.resource):
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None


__all__ = ["API_FUNCTION", "REST_API", "ApiRoute", "api_routes", "match_route"]
