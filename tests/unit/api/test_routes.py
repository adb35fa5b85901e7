"""The routes agree everywhere: resolver, permission table, template events and spec."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from pipeline.api import PERMISSIONS, build_resolver, handle, openapi_json
from pipeline.api.openapi_document import document, embedded, response_template
from pipeline.api.routes import ApiClients
from pipeline.local.gateway import api_routes, authorizer_claims, match_route, proxy_event
from pipeline.local.template import DEFAULT_TEMPLATE, load_template
from pipeline.settings import ApiSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver


def _no_clients(service: str) -> object:
    raise AssertionError(f"no AWS call expected, got a {service} client request")


def _resolver() -> APIGatewayRestResolver:
    return build_resolver(ApiSettings(forecast_table="t"), ApiClients(_no_clients))


def _rest_resource(powertools_rule: str) -> str:
    return re.sub(r"<(\w+)>", r"{\1}", powertools_rule)


def test_given_the_template_then_its_function_routes_are_exactly_the_permission_table() -> None:
    routes = api_routes(load_template(DEFAULT_TEMPLATE))
    functions = {(r.method, r.resource) for r in routes if r.function is not None}
    assert functions == set(PERMISSIONS)
    assert [r for r in routes if r.function is not None and r.public] == []


def test_given_the_template_then_the_spec_is_its_one_public_route_and_no_function_serves_it() -> (
    None
):
    routes = api_routes(load_template(DEFAULT_TEMPLATE))
    (spec,) = [r for r in routes if r.public]
    assert (spec.method, spec.resource, spec.function) == ("GET", "/openapi.json", None)
    assert spec.mock is not None
    assert (spec.mock.status, spec.mock.content_type) == (200, "application/json")
    assert json.loads(spec.mock.body) == json.loads(openapi_json(_resolver()))


def test_given_the_routes_then_the_templates_spec_is_the_one_they_generate() -> None:
    # Fails when a route changes and `make openapi` was not run.
    text = DEFAULT_TEMPLATE.read_text()
    assert embedded(text) == document()
    assert len(response_template(document())) < 64 * 1024  # a mock template stays small


def test_given_the_resolver_then_its_routes_are_exactly_the_permission_table() -> None:
    app = _resolver()
    registered = {
        (method, _rest_resource(route.path))
        for route in app._static_routes + app._dynamic_routes
        for method in [route.method.upper()]
    }
    assert registered == set(PERMISSIONS)


def test_given_the_generated_spec_then_every_protected_route_is_documented_and_secured() -> None:
    spec = json.loads(openapi_json(_resolver()))
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert documented == set(PERMISSIONS)
    assert spec["servers"] == [{"url": "/v1"}]
    assert all(
        op["security"] == [{"cognito": []}] for ops in spec["paths"].values() for op in ops.values()
    )


def test_given_a_viewer_posting_garbage_when_handled_then_403_before_any_validation() -> None:
    routes = api_routes(load_template(DEFAULT_TEMPLATE))
    route, params = match_route(routes, "POST", "/orders") or (None, {})
    assert route is not None
    event = proxy_event(
        method="POST",
        path="/orders",
        query="",
        headers=[],
        body=b"{not json",
        route=route,
        path_parameters=params,
        claims=authorizer_claims({"cognito:groups": ["ViewerGroup"]}),
    )
    response = handle(_resolver(), event, None)
    assert response["statusCode"] == 403
    assert json.loads(response["body"]) == {"message": "your groups do not allow this route"}


def test_given_a_request_when_turned_into_an_event_then_it_has_the_rest_proxy_shape() -> None:
    routes = api_routes(load_template(DEFAULT_TEMPLATE))
    matched = match_route(routes, "PUT", "/users/ann%2Bx/groups/ViewerGroup")
    assert matched is not None
    route, params = matched
    event = proxy_event(
        method="PUT",
        path="/users/ann+x/groups/ViewerGroup",
        query="a=1&a=2&b=",
        headers=[("X-H", "1"), ("X-H", "2")],
        body=b"",
        route=route,
        path_parameters=params,
        claims=authorizer_claims({"cognito:groups": ["AdminGroup", "ViewerGroup"], "exp": 5}),
    )
    assert event["resource"] == "/users/{username}/groups/{group}"
    assert event["pathParameters"] == {"username": "ann+x", "group": "ViewerGroup"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"] == {"X-H": "2"}
    assert event["multiValueHeaders"] == {"X-H": ["1", "2"]}
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "v1"
    assert event["requestContext"]["path"] == "/v1/users/ann+x/groups/ViewerGroup"
    assert event["requestContext"]["authorizer"]["claims"] == {
        "cognito:groups": "AdminGroup,ViewerGroup",
        "exp": "5",
    }


def test_given_an_unknown_path_or_method_then_no_route_matches() -> None:
    routes = api_routes(load_template(DEFAULT_TEMPLATE))
    assert match_route(routes, "GET", "/nope") is None
    assert match_route(routes, "DELETE", "/forecasts") is None
    assert match_route(routes, "GET", "/users/a/b/groups/c") is None


def test_given_the_compaction_manifest_key_then_status_reads_the_same_object() -> None:
    from pipeline.api.status import COMPACTION_MANIFEST_KEY
    from pipeline.compaction.state import MANIFEST_KEY

    assert COMPACTION_MANIFEST_KEY == MANIFEST_KEY
