"""``POST /orders``: replenishment orders, idempotent by the ``Idempotency-Key`` header.

The order id is derived from the caller and the key, and the order is written with a
conditional put, so a retried request can never create a second order: the same key with
the same body answers the stored order, the same key with another body is a conflict.
Keys are scoped to the caller (its ``sub``) so two users cannot collide on a key.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - pydantic reads the annotations
from typing import TYPE_CHECKING, Annotated, Any, Final

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from pipeline.api.errors import BadRequest, Conflict
from pipeline.api.validation import ID_PATTERN
from pipeline.aws_errors import CONDITIONAL_CHECK_FAILED, error_code, translated

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,128}$"
MAX_QUANTITY: Final = 1_000_000
_ORDER_NAMESPACE: Final = uuid.UUID("1b7c9a52-3f0e-4f57-9a59-5e1d2a4c0f11")
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class OrderRequest(BaseModel):
    """The body of ``POST /orders``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku_id: Annotated[str, Field(pattern=ID_PATTERN, description="SKU to replenish.")]
    location_id: Annotated[str, Field(pattern=ID_PATTERN, description="Store or warehouse.")]
    # strict: "5" or 5.0 is a client mistake, not a quantity.
    quantity: Annotated[int, Field(gt=0, le=MAX_QUANTITY, strict=True, description="Units.")]
    needed_by: Annotated[date, Field(description="Delivery date (yyyy-mm-dd), today or later.")]

    def fingerprint(self) -> str:
        """A hash of the body that tells a retry from a different order."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class OrderResult:
    """The stored order and whether this request created it (201) or replayed it (200)."""

    order: dict[str, Any]
    created: bool


def check_idempotency_key(value: str | None) -> str:
    """The header's value when present and well formed."""
    if value is None or value == "":
        raise BadRequest(f"the {IDEMPOTENCY_HEADER} header is required")
    if not _KEY.match(value):
        raise BadRequest(
            f"{IDEMPOTENCY_HEADER} must be 1 to 128 characters of A-Z, a-z, 0-9, _ . : or -"
        )
    return value


def order_id(caller: str, idempotency_key: str) -> str:
    """The deterministic id of the order a caller places under a key."""
    return str(uuid.uuid5(_ORDER_NAMESPACE, f"{caller}\n{idempotency_key}"))


def _order_from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": item["order_id"]["S"],
        "sku_id": item["sku_id"]["S"],
        "location_id": item["location_id"]["S"],
        "quantity": int(item["quantity"]["N"]),
        "needed_by": item["needed_by"]["S"],
        "status": item["status"]["S"],
        "created_at": item["created_at"]["S"],
        "created_by": item["created_by"]["S"],
    }


def place_order(
    dynamodb: DynamoDBClient,
    table: str,
    request: OrderRequest,
    *,
    idempotency_key: str,
    caller: str,
    caller_name: str,
    now: datetime,
) -> OrderResult:
    """Store the order once per ``(caller, idempotency_key)``; see the module docstring."""
    if request.needed_by < now.date():
        raise BadRequest(f"needed_by ({request.needed_by}) is in the past")
    oid = order_id(caller, idempotency_key)
    fingerprint = request.fingerprint()
    item: dict[str, Any] = {
        "PK": {"S": f"ORDER#{oid}"},
        "order_id": {"S": oid},
        "sku_id": {"S": request.sku_id},
        "location_id": {"S": request.location_id},
        "quantity": {"N": str(request.quantity)},
        "needed_by": {"S": request.needed_by.isoformat()},
        "status": {"S": "REQUESTED"},
        "created_at": {"S": now.isoformat(timespec="seconds")},
        "created_by": {"S": caller_name},
        "body_sha256": {"S": fingerprint},
    }
    try:
        dynamodb.put_item(
            TableName=table, Item=item, ConditionExpression="attribute_not_exists(PK)"
        )
        return OrderResult(_order_from_item(item), created=True)
    except ClientError as e:
        if error_code(e) != CONDITIONAL_CHECK_FAILED:
            with translated("store order", service="dynamodb"):
                raise
    with translated("read order", service="dynamodb"):
        stored = dynamodb.get_item(TableName=table, Key={"PK": item["PK"]}, ConsistentRead=True)
    existing = stored.get("Item")
    if existing is None or existing["body_sha256"]["S"] != fingerprint:
        raise Conflict(
            f"{IDEMPOTENCY_HEADER} {idempotency_key!r} was already used with a different body"
        )
    return OrderResult(_order_from_item(dict(existing)), created=False)
