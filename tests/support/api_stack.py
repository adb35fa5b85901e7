"""The API tests' world: a provisioned stack, its users, tokens, and the local gateway.

The session fixture ``api`` (tests/functional/conftest.py) builds it with :func:`api_stack`.
The forged tokens are the ones an attacker or a confused client would send: each must be
refused with 401.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from pipeline.local.gateway import LocalGateway
from pipeline.local.invoke import load_handler
from pipeline.local.stack import LocalStack
from pipeline.local.users import create_user, sign_in

USERS = {
    "admin": ["AdminGroup"],
    "planner": ["PlannerGroup"],
    "viewer": ["ViewerGroup"],
    "nogroup": [],
    "planview": ["PlannerGroup", "ViewerGroup"],
}


@dataclass
class Api:
    """A running gateway in front of the handler, with the stack and the callers' tokens."""

    stack: LocalStack
    gateway: LocalGateway
    tokens: dict[str, str | None]

    @property
    def url(self) -> str:
        return self.gateway.url

    def call(
        self,
        method: str,
        path: str,
        *,
        caller: str | None = "admin",
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """``(status, json body)`` of one request through the gateway."""
        all_headers = dict(headers or {})
        bearer = token if token is not None else (self.tokens.get(caller) if caller else None)
        if bearer:
            all_headers["Authorization"] = bearer
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def _moto_key() -> jwt.PyJWK:
    """The emulator's signing key: forging with it yields tokens whose signature is valid."""
    return jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"), "RS256")


def forged_tokens(valid_id_token: str, access_token: str) -> dict[str, str | None]:
    """Tokens that must all be refused, keyed by what is wrong with them."""
    claims = jwt.decode(valid_id_token, options={"verify_signature": False})
    header = {"kid": "dummy"}
    moto_key = _moto_key().key
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return {
        "no token": None,
        "expired token": jwt.encode(
            {**claims, "iat": now - 7200, "exp": now - 3600}, moto_key, "RS256", header
        ),
        "another key": jwt.encode(claims, other_key, "RS256", header),
        "alg none": jwt.encode(claims, None, "none", header),
        "another issuer": jwt.encode(
            {**claims, "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"},
            moto_key,
            "RS256",
            header,
        ),
        "access token": access_token,
    }


def api_stack(emulator_url: str) -> Api:
    """A stack of its own, five users and the gateway, started (``gateway.stop()`` it)."""
    stack = LocalStack.create(emulator_url, stack_name=f"api{uuid.uuid4().hex[:8]}")
    tokens: dict[str, str | None] = {}
    for name, groups in USERS.items():
        create_user(stack, name, groups=groups)
        tokens[name] = sign_in(stack, name).id_token
    admin = sign_in(stack, "admin")
    tokens.update(forged_tokens(admin.id_token, admin.access_token))
    gateway = LocalGateway(stack, handler_factory=lambda fn: load_handler(stack, fn), concurrency=4)
    gateway.start()
    return Api(stack, gateway, tokens)


#: The run stamp :func:`put_forecasts` writes, as a forecast job run does.
RUN_ID = "jr_test"
GENERATED_AT = "2025-01-01T06:00:00+00:00"


def put_forecasts(
    stack: LocalStack, sku: str, location: str, days: list[str], value: float = 10.0
) -> None:
    """Write Forecasts items as the forecaster does (contract keys, numbers, ttl, run)."""
    ddb = stack.session().client("dynamodb")
    ttl = str(int(time.time()) + 90 * 86400)
    for day in days:
        ddb.put_item(
            TableName=stack.ref("ForecastTable"),
            Item={
                "PK": {"S": f"SKU#{sku}"},
                "SK": {"S": f"LOC#{location}#DATE#{day}"},
                "DateSK": {"S": f"DATE#{day}#LOC#{location}"},
                "forecast_val": {"N": str(value)},
                "confidence_lower": {"N": str(value - 2)},
                "confidence_upper": {"N": str(value + 2)},
                "ttl": {"N": ttl},
                "run_id": {"S": RUN_ID},
                "generated_at": {"S": GENERATED_AT},
            },
        )
