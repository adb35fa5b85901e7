"""Group membership through the API: what an admin may grant and remove, sign-out and audit.

The routes run through :func:`pipeline.api.handle` (authorisation first, as on AWS) with an
in-memory user pool that records every call, and the audit records are read back from the
Powertools Logger the handler would pass.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from pipeline.api import build_resolver, handle
from pipeline.api.routes import ApiClients
from pipeline.local.gateway import api_routes, authorizer_claims, match_route, proxy_event
from pipeline.local.template import DEFAULT_TEMPLATE, load_template
from pipeline.settings import ApiSettings

POOL = "pool-1"
ROUTES = api_routes(load_template(DEFAULT_TEMPLATE))


def _not_found(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "not found"}}, operation)


@dataclass
class FakeUserPool:
    """The Cognito calls the ``/users`` routes make, over users -> (enabled, groups)."""

    users: dict[str, tuple[bool, set[str]]]
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: Runs after each AdminRemoveUserFromGroup: another admin acting at the same time.
    concurrently: Any = None

    def _user(self, username: str, operation: str) -> tuple[bool, set[str]]:
        if username not in self.users:
            raise _not_found("UserNotFoundException", operation)
        return self.users[username]

    def list_users_in_group(self, *, UserPoolId: str, GroupName: str) -> dict[str, Any]:  # noqa: N803
        members = [
            {"Username": name, "Enabled": enabled}
            for name, (enabled, groups) in self.users.items()
            if GroupName in groups
        ]
        return {"Users": members}

    def admin_add_user_to_group(self, *, UserPoolId: str, Username: str, GroupName: str) -> None:  # noqa: N803
        self.calls.append(("add", f"{Username}:{GroupName}"))
        self._user(Username, "AdminAddUserToGroup")[1].add(GroupName)

    def admin_remove_user_from_group(
        self,
        *,
        UserPoolId: str,  # noqa: N803
        Username: str,  # noqa: N803
        GroupName: str,  # noqa: N803
    ) -> None:
        self.calls.append(("remove", f"{Username}:{GroupName}"))
        self._user(Username, "AdminRemoveUserFromGroup")[1].discard(GroupName)
        if self.concurrently is not None:
            self.concurrently(self)

    def admin_user_global_sign_out(self, *, UserPoolId: str, Username: str) -> None:  # noqa: N803
        self.calls.append(("sign out", Username))
        self._user(Username, "AdminUserGlobalSignOut")


@dataclass
class World:
    pool: FakeUserPool
    log: io.StringIO
    app: Any

    def call(self, method: str, path: str, caller_groups: list[str]) -> tuple[int, Any]:
        matched = match_route(ROUTES, method, path)
        assert matched is not None
        route, params = matched
        claims = {"cognito:groups": caller_groups, "cognito:username": "boss", "sub": "s-1"}
        event = proxy_event(
            method=method,
            path=path,
            query="",
            headers=[],
            body=b"",
            route=route,
            path_parameters=params,
            claims=authorizer_claims(claims),
        )
        event["requestContext"]["requestId"] = "req-1"
        response = handle(self.app, event, None)
        return response["statusCode"], json.loads(response["body"])

    def audit(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.getvalue().splitlines()]
        return [line["audit"] for line in lines if "audit" in line]

    def groups(self, username: str) -> set[str]:
        return self.pool.users[username][1]


@pytest.fixture
def world() -> World:
    pool = FakeUserPool(
        {
            "boss": (True, {"AdminGroup"}),
            "ann": (True, {"ViewerGroup"}),
            "retired": (False, {"AdminGroup"}),
        }
    )
    log = io.StringIO()
    logger = Logger(
        service=f"test-{uuid.uuid4().hex[:8]}", logger_handler=logging.StreamHandler(log)
    )
    app = build_resolver(
        ApiSettings(forecast_table="t", user_pool_id=POOL),
        ApiClients(lambda service: pool),
        audit_logger=logger,
    )
    return World(pool, log, app)


ADMIN = ["AdminGroup"]
GRANT_REFUSED = (
    "AdminGroup cannot be granted through the API, only PlannerGroup or ViewerGroup;"
    " grant it in the user pool itself"
)
LAST_ADMIN = (
    "'boss' is the last enabled member of AdminGroup; grant AdminGroup to another user"
    " in the user pool before removing it"
)


@pytest.mark.parametrize("target", ["ann", "boss", "ghost"])
def test_given_an_admin_when_granting_admin_group_then_403_with_the_reason_and_nothing_changes(
    world: World, target: str
) -> None:
    assert world.call("PUT", f"/users/{target}/groups/AdminGroup", ADMIN) == (
        403,
        {"message": GRANT_REFUSED},
    )
    assert world.pool.calls == []
    assert world.audit() == [
        {
            "actor": "boss",
            "actor_sub": "s-1",
            "target": target,
            "group": "AdminGroup",
            "action": "add",
            "outcome": "refused",
            "request_id": "req-1",
            "reason": GRANT_REFUSED,
        }
    ]


@pytest.mark.parametrize("groups", [["PlannerGroup"], ["ViewerGroup"], []])
def test_given_a_non_admin_when_changing_groups_then_403_before_the_route_runs(
    world: World, groups: list[str]
) -> None:
    for method in ("PUT", "DELETE"):
        assert world.call(method, "/users/ann/groups/PlannerGroup", groups) == (
            403,
            {"message": "your groups do not allow this route"},
        )
    assert world.pool.calls == []
    assert world.audit() == []


@pytest.mark.parametrize("group", ["PlannerGroup", "ViewerGroup"])
def test_given_an_admin_when_granting_a_grantable_group_then_one_applied_audit_record(
    world: World, group: str
) -> None:
    status, body = world.call("PUT", f"/users/ann/groups/{group}", ADMIN)
    assert (status, body) == (200, {"username": "ann", "group": group, "member": True})
    assert group in world.groups("ann")
    assert world.audit() == [
        {
            "actor": "boss",
            "actor_sub": "s-1",
            "target": "ann",
            "group": group,
            "action": "add",
            "outcome": "applied",
            "request_id": "req-1",
        }
    ]


def test_given_a_member_when_removed_from_a_group_then_signed_out_after_the_change(
    world: World,
) -> None:
    status, body = world.call("DELETE", "/users/ann/groups/ViewerGroup", ADMIN)
    assert (status, body) == (
        200,
        {"username": "ann", "group": "ViewerGroup", "member": False, "signed_out": True},
    )
    assert world.pool.calls == [("remove", "ann:ViewerGroup"), ("sign out", "ann")]
    assert world.audit() == [
        {
            "actor": "boss",
            "actor_sub": "s-1",
            "target": "ann",
            "group": "ViewerGroup",
            "action": "remove",
            "outcome": "applied",
            "request_id": "req-1",
            "signed_out": True,
        }
    ]


def test_given_the_last_enabled_admin_when_removed_from_admin_group_then_409_and_kept(
    world: World,
) -> None:
    # "retired" is in AdminGroup too, but disabled: nobody could sign in to administer.
    assert world.call("DELETE", "/users/boss/groups/AdminGroup", ADMIN) == (
        409,
        {"message": LAST_ADMIN},
    )
    assert "AdminGroup" in world.groups("boss")
    assert world.pool.calls == []
    (record,) = world.audit()
    assert (record["action"], record["outcome"], record["reason"]) == (
        "remove",
        "refused",
        LAST_ADMIN,
    )


def test_given_another_enabled_admin_when_one_is_removed_from_admin_group_then_200(
    world: World,
) -> None:
    world.pool.users["ann"][1].add("AdminGroup")
    assert world.call("DELETE", "/users/boss/groups/AdminGroup", ADMIN)[0] == 200
    assert world.groups("boss") == set()
    assert world.pool.calls[-1] == ("sign out", "boss")


def test_given_two_admins_removing_each_other_at_once_then_the_last_one_is_restored(
    world: World,
) -> None:
    world.pool.users["ann"][1].add("AdminGroup")

    def ann_removed_too(pool: FakeUserPool) -> None:
        pool.concurrently = None
        pool.users["ann"][1].discard("AdminGroup")

    world.pool.concurrently = ann_removed_too
    assert world.call("DELETE", "/users/boss/groups/AdminGroup", ADMIN) == (
        409,
        {"message": LAST_ADMIN},
    )
    assert "AdminGroup" in world.groups("boss")
    assert ("sign out", "boss") not in world.pool.calls


def test_given_a_user_who_is_no_admin_when_removed_from_an_empty_admin_group_then_not_made_admin(
    world: World,
) -> None:
    world.pool.users["boss"] = (False, {"AdminGroup"})  # the caller's token outlived its rights
    assert world.call("DELETE", "/users/ann/groups/AdminGroup", ADMIN)[0] == 200
    assert world.groups("ann") == {"ViewerGroup"}


def test_given_an_unknown_user_when_removed_then_404_and_nobody_signed_out(world: World) -> None:
    assert world.call("DELETE", "/users/ghost/groups/ViewerGroup", ADMIN) == (
        404,
        {"message": "user 'ghost' does not exist"},
    )
    assert [c for c in world.pool.calls if c[0] == "sign out"] == []
    assert world.audit() == []
