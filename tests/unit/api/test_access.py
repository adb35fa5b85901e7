"""Group permissions: parsing every shape of the claim, and the route matrix."""

from __future__ import annotations

import pytest

from pipeline.api.access import (
    PERMISSIONS,
    PUBLIC_ROUTES,
    allowed_routes,
    caller_may,
    is_allowed,
    parse_groups,
)

FORECASTS = ("GET", "/forecasts")
ORDERS = ("POST", "/orders")
ADMIN_ROUTES = {
    ("GET", "/admin/status"),
    ("GET", "/users"),
    ("PUT", "/users/{username}/groups/{group}"),
    ("DELETE", "/users/{username}/groups/{group}"),
}
OPENAPI = ("GET", "/openapi.json")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AdminGroup,PlannerGroup", {"AdminGroup", "PlannerGroup"}),
        ("[AdminGroup PlannerGroup]", {"AdminGroup", "PlannerGroup"}),
        ("[ViewerGroup]", {"ViewerGroup"}),
        ("ViewerGroup", {"ViewerGroup"}),
        (["AdminGroup", "ViewerGroup"], {"AdminGroup", "ViewerGroup"}),
        ("", set()),
        ("[]", set()),
        (None, set()),
        (42, set()),
        (["AdminGroup", 7], {"AdminGroup"}),
    ],
)
def test_given_a_groups_claim_in_any_shape_when_parsed_then_the_group_names(
    raw: object, expected: set[str]
) -> None:
    assert parse_groups(raw) == expected


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ({"AdminGroup"}, {FORECASTS, ORDERS, *ADMIN_ROUTES, OPENAPI}),
        ({"PlannerGroup"}, {FORECASTS, ORDERS, OPENAPI}),
        ({"ViewerGroup"}, {FORECASTS, OPENAPI}),
        ({"PlannerGroup", "ViewerGroup"}, {FORECASTS, ORDERS, OPENAPI}),
        (set(), {OPENAPI}),
        ({"SomeOtherGroup"}, {OPENAPI}),
    ],
)
def test_given_groups_when_routes_are_listed_then_exactly_the_union_of_their_rights(
    groups: set[str], expected: set[tuple[str, str]]
) -> None:
    assert allowed_routes(frozenset(groups)) == expected


def test_given_a_route_nobody_was_granted_when_checked_then_even_admin_is_denied() -> None:
    assert not is_allowed(("GET", "/secret"), frozenset({"AdminGroup"}))
    assert not is_allowed(("get", "/forecasts"), frozenset({"AdminGroup"}))


def test_given_the_permission_table_then_public_routes_are_not_also_granted() -> None:
    assert not PUBLIC_ROUTES & set(PERMISSIONS)


def test_given_a_rest_event_with_string_groups_when_checked_then_the_route_decides() -> None:
    event = {
        "httpMethod": "POST",
        "resource": "/orders",
        "requestContext": {
            "authorizer": {"claims": {"cognito:groups": "ViewerGroup,PlannerGroup"}}
        },
    }
    assert caller_may(event)
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = "[ViewerGroup]"
    assert not caller_may(event)


def test_given_an_event_without_authorizer_when_checked_then_only_public_routes_pass() -> None:
    assert caller_may({"httpMethod": "GET", "resource": "/openapi.json"})
    assert not caller_may({"httpMethod": "GET", "resource": "/forecasts", "requestContext": None})
