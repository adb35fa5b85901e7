"""moto's Cognito made to enforce what the template's user pool and app client declare.

moto stores a client's settings but signs anyone in whichever way they ask: it takes any
auth flow, answers ``USER_SRP_AUTH`` with random numbers and accepts any password proof,
tells a caller which usernames exist, checks no TOTP code and issues every token for an
hour. The emulator (``pipeline.local.server``) applies these patches so that the local pool
behaves as the deployed one on the points the template sets:

- ``ExplicitAuthFlows``: a flow the client does not allow is refused, with Cognito's
  ``InvalidParameterException: <FLOW> flow not enabled for this client``;
- ``USER_SRP_AUTH``: the pool's ``B`` is derived from the user's password and the
  ``PASSWORD_VERIFIER`` signature is checked (:class:`pipeline.local.cognito_srp.SrpServer`);
  a wrong password is ``NotAuthorizedException: Incorrect username or password.``;
- ``PreventUserExistenceErrors: ENABLED``: an unknown user is that same answer, not
  ``UserNotFoundException``;
- ``SOFTWARE_TOKEN_MFA``: codes are checked (moto's own switch,
  ``MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP``);
- ``IdTokenValidity`` / ``AccessTokenValidity`` with ``TokenValidityUnits``: the tokens'
  ``exp`` and ``ExpiresIn``.

``tests/functional/local/test_cognito_emulation.py`` checks each through the server.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from collections import OrderedDict
from typing import Any, Final

from pipeline.local.cognito_srp import SrpServer

INCORRECT: Final = "Incorrect username or password."
TOTP_SWITCH: Final = "MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP"
#: What a flow needs in ``ExplicitAuthFlows`` (the ``ALLOW_`` names and the legacy ones).
FLOW_GRANTS: Final[dict[str, frozenset[str]]] = {
    "USER_SRP_AUTH": frozenset({"ALLOW_USER_SRP_AUTH"}),
    "USER_PASSWORD_AUTH": frozenset({"ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"}),
    "ADMIN_USER_PASSWORD_AUTH": frozenset({"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}),
    "ADMIN_NO_SRP_AUTH": frozenset({"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}),
    "REFRESH_TOKEN_AUTH": frozenset({"ALLOW_REFRESH_TOKEN_AUTH"}),
    "REFRESH_TOKEN": frozenset({"ALLOW_REFRESH_TOKEN_AUTH"}),
    "CUSTOM_AUTH": frozenset({"ALLOW_CUSTOM_AUTH", "CUSTOM_AUTH_FLOW_ONLY"}),
}
#: Cognito's flows for a client created without ``ExplicitAuthFlows``.
DEFAULT_FLOWS: Final = frozenset(
    {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_CUSTOM_AUTH"}
)
_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
#: Sign-ins between InitiateAuth and the PASSWORD_VERIFIER answer; abandoned ones age out.
MAX_PENDING_SRP: Final = 10_000


class _PendingSrp:
    """Secret block -> (moto's session, the pool's SRP half, the client's A)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[str, SrpServer, str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: str, server: SrpServer, big_a: str) -> str:
        block = base64.b64encode(secrets.token_bytes(48)).decode()
        with self._lock:
            self._entries[block] = (session, server, big_a)
            while len(self._entries) > MAX_PENDING_SRP:
                self._entries.popitem(last=False)
        return block

    def take(self, block: str) -> tuple[str, SrpServer, str] | None:
        with self._lock:
            return self._entries.pop(block, None)


_pending = _PendingSrp()


def _client_of(backend: Any, client_id: str) -> tuple[Any, Any]:
    """The pool and app client of ``client_id`` (``None, None`` for an unknown client)."""
    for pool in backend.user_pools.values():
        client = pool.clients.get(client_id)
        if client is not None:
            return pool, client
    return None, None


def _check_flow(client: Any, auth_flow: str) -> None:
    from moto.cognitoidp.exceptions import InvalidParameterException

    declared = client.extended_config.get("ExplicitAuthFlows")
    allowed = frozenset(declared) if declared else DEFAULT_FLOWS
    needs = FLOW_GRANTS.get(auth_flow)
    if needs is not None and not needs & allowed:
        raise InvalidParameterException(f"{auth_flow} flow not enabled for this client")


def _hides_users(client: Any) -> bool:
    return client is not None and client.extended_config.get("PreventUserExistenceErrors") == (
        "ENABLED"
    )


def _validity_seconds(client: Any, token_use: str) -> int | None:
    """The lifetime the client declares for an id or access token, in seconds."""
    config = client.extended_config
    key, unit_key = (
        ("IdTokenValidity", "IdToken")
        if token_use == "id"
        else (
            "AccessTokenValidity",
            "AccessToken",
        )
    )
    if config.get(key) is None:
        return None
    unit = (config.get("TokenValidityUnits") or {}).get(unit_key, "hours")
    return int(config[key]) * _SECONDS[unit]


def apply() -> None:
    """Patch moto's Cognito backend in this process (idempotent)."""
    from moto.cognitoidp.exceptions import NotAuthorizedError, UserNotFoundError
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool

    if getattr(CognitoIdpBackend.initiate_auth, "enforces_client", False):
        return
    os.environ.setdefault(TOTP_SWITCH, "true")
    initiate_auth = CognitoIdpBackend.initiate_auth
    admin_initiate_auth = CognitoIdpBackend.admin_initiate_auth
    respond = CognitoIdpBackend.respond_to_auth_challenge
    create_jwt = CognitoIdpUserPool.create_jwt

    def patched_initiate_auth(
        self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]
    ) -> dict[str, Any]:
        pool, client = _client_of(self, client_id)
        if client is not None:
            _check_flow(client, auth_flow)
        try:
            result: dict[str, Any] = initiate_auth(self, client_id, auth_flow, auth_parameters)
        except UserNotFoundError:
            if _hides_users(client):
                raise NotAuthorizedError(INCORRECT) from None
            raise
        if auth_flow == "USER_SRP_AUTH" and result.get("ChallengeName") == "PASSWORD_VERIFIER":
            params = result["ChallengeParameters"]
            user = pool._get_user(auth_parameters["USERNAME"])
            server = SrpServer(pool.id, params["USER_ID_FOR_SRP"], user.password, params["SALT"])
            params["SRP_B"] = f"{server.big_b:x}"
            params["SECRET_BLOCK"] = _pending.add(
                params["SECRET_BLOCK"], server, auth_parameters["SRP_A"]
            )
        return result

    def patched_admin_initiate_auth(
        self: Any,
        user_pool_id: str,
        client_id: str,
        auth_flow: str,
        auth_parameters: dict[str, str],
    ) -> dict[str, Any]:
        _, client = _client_of(self, client_id)
        if client is not None:
            _check_flow(client, auth_flow)
        try:
            return dict(
                admin_initiate_auth(self, user_pool_id, client_id, auth_flow, auth_parameters)
            )
        except UserNotFoundError:
            if _hides_users(client):
                raise NotAuthorizedError(INCORRECT) from None
            raise

    def patched_respond(
        self: Any,
        session: str,
        client_id: str,
        challenge_name: str,
        challenge_responses: dict[str, str],
    ) -> dict[str, Any]:
        if challenge_name == "PASSWORD_VERIFIER":
            pending = _pending.take(challenge_responses.get("PASSWORD_CLAIM_SECRET_BLOCK", ""))
            if pending is None:
                raise NotAuthorizedError(INCORRECT)  # not a block this pool issued, or reused
            moto_session, server, big_a = pending
            if not server.verifies(big_a, challenge_responses):
                raise NotAuthorizedError(INCORRECT)
            challenge_responses = {
                **challenge_responses,
                "PASSWORD_CLAIM_SECRET_BLOCK": moto_session,
            }
        return dict(respond(self, session, client_id, challenge_name, challenge_responses))

    def patched_create_jwt(  # noqa: PLR0917 - moto's signature
        self: Any,
        client_id: str,
        username: str,
        token_use: str,
        expires_in: int = 60 * 60,
        extra_data: dict[str, Any] | None = None,
    ) -> tuple[str, int]:
        client = self.clients.get(client_id)
        declared = None if client is None else _validity_seconds(client, token_use)
        result: tuple[str, int] = create_jwt(
            self, client_id, username, token_use, declared or expires_in, extra_data
        )
        return result

    patched_initiate_auth.enforces_client = True  # type: ignore[attr-defined]
    CognitoIdpBackend.initiate_auth = patched_initiate_auth  # type: ignore[method-assign]
    CognitoIdpBackend.admin_initiate_auth = patched_admin_initiate_auth  # type: ignore[method-assign]
    CognitoIdpBackend.respond_to_auth_challenge = patched_respond  # type: ignore[method-assign]
    CognitoIdpUserPool.create_jwt = patched_create_jwt  # type: ignore[method-assign]
