"""The local gateway's Cognito authorizer: every refused token, with its reason."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.local.gateway import CognitoTokenVerifier, Unauthorized

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
CLIENT = "client-1"
HMAC_SECRET = "a-shared-secret-of-32-bytes-long!"
POOL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Keys:
    """Stands in for ``jwt.PyJWKClient``: the pool's one public key, whatever the kid."""

    def get_signing_key_from_jwt(self, token: str) -> Any:
        return type("SigningKey", (), {"key": POOL_KEY.public_key()})()


def _verifier() -> CognitoTokenVerifier:
    return CognitoTokenVerifier(
        jwks_url="unused",
        issuer=ISSUER,
        client_id=CLIENT,
        jwk_client=_Keys(),  # type: ignore[arg-type]
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "sub": "u1",
        "iat": now,
        # A day, not minutes: the parametrized tokens are signed when the suite is
        # collected, and a loaded run reaches them more than ten minutes later.
        "exp": now + 86_400,
        "cognito:groups": ["ViewerGroup"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: Any = POOL_KEY, alg: str = "RS256") -> str:
    return jwt.encode(claims, key, alg, {"kid": "k1"})


def test_given_a_valid_id_token_when_verified_then_its_claims() -> None:
    claims = _verifier().verify(_sign(_claims()))
    assert claims["cognito:groups"] == ["ViewerGroup"]
    assert _verifier().verify("Bearer " + _sign(_claims()))["sub"] == "u1"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "no Authorization header"),
        ("", "no Authorization header"),
        ("not-a-jwt", "DecodeError: Not enough segments"),
        (_sign(_claims(exp=int(time.time()) - 60)), "ExpiredSignatureError: Signature has expired"),
        (_sign(_claims(), OTHER_KEY), "InvalidSignatureError: Signature verification failed"),
        (_sign(_claims(), None, "none"), "algorithm 'none' is not RS256"),
        (
            _sign(_claims(), "a-shared-secret-of-32-bytes-long!", "HS256"),
            "algorithm 'HS256' is not RS256",
        ),
        (_sign(_claims(iss="https://evil")), "InvalidIssuerError: Invalid issuer"),
        (_sign(_claims(aud="other-client")), "InvalidAudienceError: Audience doesn't match"),
        (
            _sign(_claims(aud=None, client_id=CLIENT, token_use="access")),
            'MissingRequiredClaimError: Token is missing the "aud" claim',
        ),
        (_sign(_claims(token_use="access")), "token_use is 'access', not 'id'"),
        (
            _sign(_claims(token_use=None)),
            'MissingRequiredClaimError: Token is missing the "token_use" claim',
        ),
    ],
)
def test_given_a_bad_token_when_verified_then_unauthorized_with_the_reason(
    token: str | None, reason: str
) -> None:
    with pytest.raises(Unauthorized) as e:
        _verifier().verify(token)
    assert e.value.reason == reason
