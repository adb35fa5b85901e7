"""Local users of the emulator's user pool, and their tokens, for the local gateway.

Users are created with a permanent password (no "force change password" challenge) and
signed in with ``ADMIN_USER_PASSWORD_AUTH`` on the template's app client, so the id token
is exactly what Cognito hands a signed-in user. moto puts ``cognito:groups`` (a JSON list)
in id tokens of users who belong to groups, as Cognito does.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.errors import ConfigurationError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pipeline.local.stack import LocalStack


@dataclass(frozen=True)
class Tokens:
    """The tokens of one sign-in."""

    id_token: str
    access_token: str
    refresh_token: str | None
    expires_in: int


def local_password(username: str) -> str:
    """A password that meets the template's policy; deterministic so ``fmcg token`` works.

    Local users only live in the emulator: a memorable password beats a stored secret.
    """
    return f"Local-{username}-Passw0rd!"


def random_password() -> str:
    """A random password meeting the pool policy (12+ chars, upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits
    return "Aa1!" + "".join(secrets.choice(alphabet) for _ in range(20))


def create_user(
    stack: LocalStack,
    username: str,
    *,
    groups: Iterable[str] = (),
    password: str | None = None,
) -> str:
    """Create (or update) ``username`` with a permanent password and these groups.

    Returns the password. Re-running with the same user is safe: the user is kept, the
    password reset and the groups added.
    """
    cognito = stack.session().client("cognito-idp")
    pool = stack.ref("UserPool")
    password = password or local_password(username)
    try:
        cognito.admin_create_user(UserPoolId=pool, Username=username, MessageAction="SUPPRESS")
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "UsernameExistsException":
            raise ConfigurationError(f"cannot create user {username}: {e}") from e
    try:
        cognito.admin_set_user_password(
            UserPoolId=pool, Username=username, Password=password, Permanent=True
        )
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code == "InvalidPasswordException":
            raise InvalidInputError(f"password refused for {username}: {_message(e)}") from e
        raise ConfigurationError(f"cannot set the password of {username}: {e}") from e
    for group in groups:
        try:
            cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
        except ClientError as e:
            raise ConfigurationError(f"cannot add {username} to {group}: {e}") from e
    return password


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message") or error)


def sign_in(stack: LocalStack, username: str, password: str | None = None) -> Tokens:
    """Sign ``username`` in on the template's app client and return its tokens."""
    cognito = stack.session().client("cognito-idp")
    try:
        result: Any = cognito.admin_initiate_auth(
            UserPoolId=stack.ref("UserPool"),
            ClientId=stack.ref("UserPoolClient"),
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={
                "USERNAME": username,
                "PASSWORD": password or local_password(username),
            },
        )["AuthenticationResult"]
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code in {"UserNotFoundException", "NotAuthorizedException"}:
            raise NotFoundError(f"cannot sign in {username}: {code}") from e
        raise ConfigurationError(f"cannot sign in {username}: {e}") from e
    return Tokens(
        id_token=result["IdToken"],
        access_token=result["AccessToken"],
        refresh_token=result.get("RefreshToken"),
        expires_in=int(result.get("ExpiresIn", 3600)),
    )


def id_token(stack: LocalStack, username: str, password: str | None = None) -> str:
    """The id token of ``username`` (what the API's ``Authorization`` header carries)."""
    return sign_in(stack, username, password).id_token
