"""``/users``: list the user pool's users with their groups, add or remove a group (Cognito)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from pipeline.api.access import GROUPS
from pipeline.api.errors import BadRequest, NotFound
from pipeline.aws_errors import RESOURCE_NOT_FOUND, USER_NOT_FOUND, error_code, translated

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

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


def change_group(
    cognito: CognitoIdentityProviderClient,
    pool_id: str,
    username: str,
    group: str,
    *,
    member: bool,
) -> dict[str, Any]:
    """Add (``member=True``) or remove a user from a group; idempotent like Cognito."""
    check_username(username)
    check_group(group)
    call = cognito.admin_add_user_to_group if member else cognito.admin_remove_user_from_group
    try:
        call(UserPoolId=pool_id, Username=username, GroupName=group)
    except ClientError as e:
        if error_code(e) == USER_NOT_FOUND:
            raise NotFound(f"user {username!r} does not exist") from e
        if error_code(e) == RESOURCE_NOT_FOUND:
            raise NotFound(f"group {group!r} does not exist") from e
        with translated("change group", service="cognito-idp"):
            raise
    return {"username": username, "group": group, "member": member}
