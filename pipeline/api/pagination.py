"""Opaque page tokens: DynamoDB's ``LastEvaluatedKey``, base64url-encoded and checked on return.

A token is only a key to resume from, so it carries no secret; what matters is that a
tampered or foreign token cannot widen the query. :func:`decode_token` accepts only a key of
the same partition whose sort key stays inside the range the request asked for.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from pipeline.api.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Callable

Key = dict[str, str]
INVALID_TOKEN = "next_token is not a token this API issued for this query"


def encode_token(key: Key) -> str:
    """The opaque token of a page's last key (``{"PK": ..., "SK": ...}``)."""
    raw = json.dumps({"PK": key["PK"], "SK": key["SK"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, *, partition: str, sort_key_ok: Callable[[str], bool]) -> Key:
    """The key a token encodes, when it belongs to ``partition`` and ``sort_key_ok`` holds."""
    if len(token) > 1024:
        raise BadRequest(INVALID_TOKEN)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest(INVALID_TOKEN) from None
    if (
        not isinstance(body, dict)
        or set(body) != {"PK", "SK"}
        or not all(isinstance(v, str) for v in body.values())
        or body["PK"] != partition
        or not sort_key_ok(body["SK"])
    ):
        raise BadRequest(INVALID_TOKEN)
    return {"PK": body["PK"], "SK": body["SK"]}
