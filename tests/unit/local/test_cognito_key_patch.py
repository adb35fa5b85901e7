"""A new Cognito user pool reuses moto's signing key (``emulator_patches``).

moto's backend in this process, no server: what the patch saves is the key import each
pool did, which counting the imports shows exactly; the tokens stay verifiable.
"""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwk, jwt
from moto.cognitoidp.models import CognitoIdpBackend

from pipeline.local.emulator_patches import cognito_signing_key_once


@pytest.fixture
def imports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times an RSA key was imported (and checked)."""
    counted: list[int] = []
    original = jwk.RSAKey.import_key

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(jwk.RSAKey, "import_key", counting)
    return counted


def test_given_the_patch_when_pools_are_created_then_the_key_is_imported_once(
    imports: list[int],
) -> None:
    cognito_signing_key_once()
    backend = CognitoIdpBackend("us-east-1", "123456789012")

    pools = [backend.create_user_pool(f"pool-{i}", {}) for i in range(5)]

    assert len(imports) <= 1
    assert len({id(p.json_web_key) for p in pools}) == 1
    # A token one pool signs verifies with the public key every pool publishes.
    token = jwt.encode({"kid": "dummy", "alg": "RS256"}, {"sub": "u"}, pools[3].json_web_key)
    public = jwk.RSAKey.import_key(pools[0].json_web_key.as_dict(private=False))
    assert jwt.decode(token, public).claims == {"sub": "u"}
