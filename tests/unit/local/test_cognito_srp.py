"""Cognito SRP: a known answer from an independent client, and the server half's check."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.cognito_srp import N, SrpClient, SrpServer, pad_hex, timestamp

POOL = "us-east-1_Ab12Cd34e"
PASSWORD = "Local-planner-Passw0rd!"
SALT = "fa1e2d3c4b5a69788796a5b4c3d2e1f0"
SMALL_A = int("a1b2c3d4e5f6" * 40, 16) % N
SMALL_B = int("77" * 100, 16)
WHEN = datetime(2026, 3, 3, 9, 5, 7, tzinfo=UTC)
#: pycognito 2024.5.1's AWSSRP.process_challenge with the same a, B, salt, secret block and
#: clock (its own implementation of amazon-cognito-identity-js's AuthenticationHelper).
PYCOGNITO_SIGNATURE = "+cqb6Rssv2iHZCyJG/uWZ4NO8nCOlf4Xj8N3iIQ+W38="


def _challenge(server: SrpServer) -> dict[str, str]:
    return {
        "USER_ID_FOR_SRP": "user-id-123",
        "USERNAME": "planner",
        "SALT": SALT,
        "SRP_B": f"{server.big_b:x}",
        "SECRET_BLOCK": base64.b64encode(b"secret-block-bytes").decode(),
    }


def _server() -> SrpServer:
    return SrpServer(POOL, "user-id-123", PASSWORD, SALT, small_b=SMALL_B)


def test_given_fixed_numbers_when_answered_then_the_signature_an_independent_client_computes() -> (
    None
):
    answer = SrpClient(POOL, small_a=SMALL_A).answer(_challenge(_server()), PASSWORD, WHEN)
    assert answer["TIMESTAMP"] == "Tue Mar 3 09:05:07 UTC 2026"
    assert answer["PASSWORD_CLAIM_SIGNATURE"] == PYCOGNITO_SIGNATURE
    assert answer["USERNAME"] == "planner"


def test_given_the_right_password_then_the_server_verifies_and_a_wrong_one_is_refused() -> None:
    server = _server()
    client = SrpClient(POOL)
    big_a = client.auth_parameters("planner")["SRP_A"]
    assert server.verifies(big_a, client.answer(_challenge(server), PASSWORD))
    assert not server.verifies(big_a, client.answer(_challenge(server), PASSWORD + "x"))
    other = SrpClient(POOL).answer(_challenge(server), PASSWORD)  # another A than announced
    assert not server.verifies(big_a, other)


def test_given_a_pool_that_sends_b_zero_when_answered_then_refused() -> None:
    challenge = {**_challenge(_server()), "SRP_B": f"{N:x}"}
    with pytest.raises(ConfigurationError, match=r"B = 0 \(mod N\)"):
        SrpClient(POOL).answer(challenge, PASSWORD)


@pytest.mark.parametrize(
    ("value", "padded"),
    [(0x7F, "7f"), (0x80, "0080"), (0xABC, "0abc"), ("ff", "00ff"), ("1234", "1234")],
)
def test_given_numbers_when_padded_then_as_a_signed_big_endian_integer(
    value: int | str, padded: str
) -> None:
    assert pad_hex(value) == padded


def test_given_a_single_digit_day_when_stamped_then_it_is_not_zero_padded() -> None:
    assert timestamp(datetime(2026, 11, 1, 0, 0, 9, tzinfo=UTC)) == "Sun Nov 1 00:00:09 UTC 2026"
