"""Opaque page tokens: a DynamoDB key to resume after, base64url-encoded and checked on return.

A token is only a key to resume from, so it carries no secret; what matters is that a
tampered or foreign token cannot widen the query or reach DynamoDB malformed.
:func:`decode_token` accepts only a key with exactly the attributes the query's table or
index keys on, of the same partition, that ``key_ok`` (the query's own pattern and range
check) accepts.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Final

from pipeline.api.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

Key = dict[str, str]
INVALID_TOKEN: Final = "next_token is not a token this API issued for this query"
MAX_TOKEN_CHARS: Final = 1024


def encode_token(key: Key) -> str:
    """The opaque token of a key (``{"PK": ..., "SK": ...}`` plus any index key)."""
    raw = json.dumps(dict(sorted(key.items())), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(
    token: str,
    *,
    partition: str,
    attributes: Collection[str],
    key_ok: Callable[[Key], bool],
) -> Key:
    """The key a token encodes: exactly ``attributes``, all strings, ``PK == partition``,
    and ``key_ok`` holds; anything else is a :class:`BadRequest` (:data:`INVALID_TOKEN`)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise BadRequest(INVALID_TOKEN)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest(INVALID_TOKEN) from None
    if (
        not isinstance(body, dict)
        or set(body) != set(attributes)
        or not all(isinstance(v, str) for v in body.values())
        or body.get("PK") != partition
        or not key_ok(body)
    ):
        raise BadRequest(INVALID_TOKEN)
    return {name: body[name] for name in attributes}
