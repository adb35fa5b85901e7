"""Page tokens: round trip, and every tampering refused with the same 400."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.api.errors import BadRequest
from pipeline.api.pagination import INVALID_TOKEN, decode_token, encode_token


def _always(_: dict[str, str]) -> bool:
    return True


TABLE_KEY = ("PK", "SK")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@settings(max_examples=40, deadline=None)
@given(sk=st.text(min_size=1, max_size=80))
def test_given_a_key_when_encoded_then_it_decodes_to_the_same_key(sk: str) -> None:
    key = {"PK": "SKU#S1", "SK": sk}
    assert (
        decode_token(encode_token(key), partition="SKU#S1", attributes=TABLE_KEY, key_ok=_always)
        == key
    )


def test_given_an_index_key_when_encoded_then_it_decodes_with_the_index_attributes() -> None:
    key = {"PK": "SKU#S1", "SK": "LOC#L1#DATE#2025-01-01", "DateSK": "DATE#2025-01-01#LOC#L1"}
    attributes = ("PK", "SK", "DateSK")
    assert (
        decode_token(encode_token(key), partition="SKU#S1", attributes=attributes, key_ok=_always)
        == key
    )
    with pytest.raises(BadRequest) as e:  # a table key where the index key is expected
        decode_token(
            encode_token({"PK": "SKU#S1", "SK": key["SK"]}),
            partition="SKU#S1",
            attributes=attributes,
            key_ok=_always,
        )
    assert e.value.message == INVALID_TOKEN


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !!",
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(json.dumps({"PK": "SKU#S1"}).encode()),
        _b64(json.dumps({"PK": "SKU#S1", "SK": 5}).encode()),
        _b64(json.dumps({"PK": "SKU#S1", "SK": "x", "extra": "y"}).encode()),
        _b64(json.dumps({"PK": "SKU#OTHER", "SK": "LOC#L1#DATE#2025-01-01"}).encode()),
        "A" * 2000,
    ],
)
def test_given_a_tampered_token_when_decoded_then_bad_request(token: str) -> None:
    with pytest.raises(BadRequest) as e:
        decode_token(token, partition="SKU#S1", attributes=TABLE_KEY, key_ok=_always)
    assert e.value.message == INVALID_TOKEN


def test_given_a_token_outside_the_query_range_when_decoded_then_bad_request() -> None:
    token = encode_token({"PK": "SKU#S1", "SK": "LOC#L9#DATE#2025-01-01"})
    with pytest.raises(BadRequest) as e:
        decode_token(
            token,
            partition="SKU#S1",
            attributes=TABLE_KEY,
            key_ok=lambda key: key["SK"].startswith("LOC#L1#"),
        )
    assert e.value.message == INVALID_TOKEN
