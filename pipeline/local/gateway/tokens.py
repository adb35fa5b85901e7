"""The Cognito user pool authorizer: which tokens the REST API lets through, and the claims
it hands the function."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt

from pipeline.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipeline.local.stack import LocalStack


class Unauthorized(TerminalError):  # noqa: N818 - named after the HTTP answer it becomes
    """A token the authorizer refuses; ``reason`` is logged, the client only sees 401.

    Terminal: the same token is refused again, whoever retries it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CognitoTokenVerifier:
    """Verifies Cognito id tokens like the REST API's Cognito user pool authorizer."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        client_id: str,
        jwk_client: jwt.PyJWKClient | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.jwk_client = jwk_client or jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5)

    @classmethod
    def for_stack(cls, stack: LocalStack) -> CognitoTokenVerifier:
        """The verifier of the stack's user pool and app client, JWKS served by the emulator."""
        pool_id = stack.ref("UserPool")
        return cls(
            jwks_url=f"{stack.endpoint_url}/{pool_id}/.well-known/jwks.json",
            issuer=stack.resources["UserPool"].attributes["ProviderURL"],
            client_id=stack.ref("UserPoolClient"),
        )

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The claims of the ``Authorization`` header's token, or :class:`Unauthorized`."""
        if not authorization:
            raise Unauthorized("no Authorization header")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise Unauthorized(f"algorithm {header.get('alg')!r} is not RS256")
            key = self.jwk_client.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "token_use"]},
            )
        except jwt.PyJWTError as e:
            raise Unauthorized(f"{type(e).__name__}: {e}") from e
        if claims.get("token_use") != "id":
            raise Unauthorized(f"token_use is {claims.get('token_use')!r}, not 'id'")
        return claims


def authorizer_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as the REST Cognito authorizer passes them: every value a string.

    Lists (``cognito:groups``) become comma-separated, as in ``"AdminGroup,PlannerGroup"``.
    """
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in claims.items()}


__all__ = ["CognitoTokenVerifier", "Unauthorized", "authorizer_claims"]
