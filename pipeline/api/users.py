"""``/users``: list the user pool's users with their groups, add or remove a group (Cognito).

The API manages PlannerGroup and ViewerGroup; it may take AdminGroup away (never from the
last admin) but never grant it. Removing a user from a group signs them out everywhere, and
every change (or refusal) writes one audit record (:mod:`pipeline.api.audit`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from pipeline.api.access import ADMIN_GROUP, GRANTABLE_GROUPS, GROUPS
from pipeline.api.errors import BadRequest, Conflict, Forbidden, NotFound, RequestError
from pipeline.aws_errors import RESOURCE_NOT_FOUND, USER_NOT_FOUND, error_code, translated

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

    from pipeline.api.audit import Action, MembershipAudit

USERNAME_PATTERN: Final = r"^[A-Za-z0-9_.@+-]{1,128}$"
_USERNAME = re.compile(USERNAME_PATTERN)


def check_username(value: str) -> str:
    """A username this API manages (1..128 of letters, digits and ``_ . @ + -``)."""
    if not _USERNAME.match(value):
        raise BadRequest("username must be 1 to 128 characters of A-Z, a-z, 0-9, _ . @ + or -")
    return value


def check_group(value: str) -> str:
    """One of the pool's access groups."""
    if value not in GROUPS:
        raise BadRequest(f"group must be one of {', '.join(GROUPS)}")
    return value


def _pages(call: Any, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        with translated("list users", service="cognito-idp"):
            page = call(**kwargs)
        yield from page.get(key, [])
        token = page.get("NextToken") or page.get("PaginationToken")
        if not token:
            return
        kwargs["NextToken" if "NextToken" in page else "PaginationToken"] = token


def list_users(cognito: CognitoIdentityProviderClient, pool_id: str) -> list[dict[str, Any]]:
    """Every user with its status and groups (one call per group, not one per user)."""
    groups_of: dict[str, list[str]] = {}
    for group in GROUPS:
        for user in _pages(
            cognito.list_users_in_group, "Users", UserPoolId=pool_id, GroupName=group
        ):
            groups_of.setdefault(user["Username"], []).append(group)
    return [
        {
            "username": user["Username"],
            "status": user.get("UserStatus"),
            "enabled": user.get("Enabled"),
            "groups": sorted(groups_of.get(user["Username"], [])),
        }
        for user in _pages(cognito.list_users, "Users", UserPoolId=pool_id)
    ]


def _enabled_admins(cognito: CognitoIdentityProviderClient, pool_id: str) -> set[str]:
    """The enabled members of AdminGroup: a disabled user cannot sign in to administer."""
    return {
        user["Username"]
        for user in _pages(
            cognito.list_users_in_group, "Users", UserPoolId=pool_id, GroupName=ADMIN_GROUP
        )
        if user.get("Enabled", True)
    }


def _last_admin(username: str) -> Conflict:
    return Conflict(
        f"{username!r} is the last enabled member of {ADMIN_GROUP}; "
        f"grant {ADMIN_GROUP} to another user in the user pool before removing it"
    )


def _refused(
    audit: MembershipAudit, refusal: RequestError, *, target: str, group: str, action: Action
) -> RequestError:
    """``refusal``, once its audit record is written."""
    audit.record(
        target=target, group=group, action=action, outcome="refused", reason=refusal.message
    )
    return refusal


def _membership_call(call: Any, pool_id: str, username: str, group: str, action: str) -> None:
    """One AdminAddUserToGroup / AdminRemoveUserFromGroup; a missing user or group is 404."""
    try:
        call(UserPoolId=pool_id, Username=username, GroupName=group)
    except ClientError as e:
        if error_code(e) == USER_NOT_FOUND:
            raise NotFound(f"user {username!r} does not exist") from e
        if error_code(e) == RESOURCE_NOT_FOUND:
            raise NotFound(f"group {group!r} does not exist") from e
        with translated(action, service="cognito-idp"):
            raise


def add_to_group(
    cognito: CognitoIdentityProviderClient,
    pool_id: str,
    username: str,
    group: str,
    *,
    audit: MembershipAudit,
) -> dict[str, Any]:
    """Add a user to PlannerGroup or ViewerGroup; idempotent like Cognito.

    AdminGroup is refused (403, :data:`~pipeline.api.access.GRANTABLE_GROUPS` says why)
    before Cognito is called, and the refusal is audited.
    """
    check_username(username)
    check_group(group)
    if group not in GRANTABLE_GROUPS:
        refusal = Forbidden(
            f"{group} cannot be granted through the API, only "
            f"{' or '.join(GRANTABLE_GROUPS)}; grant it in the user pool itself"
        )
        raise _refused(audit, refusal, target=username, group=group, action="add")
    _membership_call(cognito.admin_add_user_to_group, pool_id, username, group, "add to group")
    audit.record(target=username, group=group, action="add", outcome="applied")
    return {"username": username, "group": group, "member": True}


def remove_from_group(
    cognito: CognitoIdentityProviderClient,
    pool_id: str,
    username: str,
    group: str,
    *,
    audit: MembershipAudit,
) -> dict[str, Any]:
    """Remove a user from a group and sign them out everywhere; idempotent like Cognito.

    The sign-out (AdminUserGlobalSignOut) revokes the user's refresh and access tokens, so
    no new id token carries the old groups. An id token already issued stays valid at API
    Gateway's Cognito authorizer until it expires (Cognito cannot revoke it there).

    The last enabled admin cannot be removed from AdminGroup (409): the pool would be left
    with nobody who can administer it through the API. Cognito has no conditional
    membership change, so two admins removing each other at once could both pass the
    check; the count is taken again after the removal, and a removal that left no admin is
    undone and refused.
    """
    check_username(username)
    check_group(group)
    was_admin = False
    if group == ADMIN_GROUP:
        admins = _enabled_admins(cognito, pool_id)
        if admins == {username}:
            raise _refused(
                audit, _last_admin(username), target=username, group=group, action="remove"
            )
        was_admin = username in admins
    remove = cognito.admin_remove_user_from_group
    _membership_call(remove, pool_id, username, group, "remove from group")
    if was_admin and not _enabled_admins(cognito, pool_id):
        restore = cognito.admin_add_user_to_group
        _membership_call(restore, pool_id, username, group, "restore the last admin")
        raise _refused(audit, _last_admin(username), target=username, group=group, action="remove")
    signed_out = False
    try:
        with translated("sign out", service="cognito-idp"):
            cognito.admin_user_global_sign_out(UserPoolId=pool_id, Username=username)
        signed_out = True
    finally:
        # Logged even when the sign-out fails (the client gets 503 and may retry): the
        # membership did change.
        audit.record(
            target=username,
            group=group,
            action="remove",
            outcome="applied",
            signed_out=signed_out,
        )
    return {"username": username, "group": group, "member": False, "signed_out": True}
