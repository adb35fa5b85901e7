"""Cognito's SRP sign-in (``USER_SRP_AUTH``): the client's proof of the password, and its check.

The password never leaves the client. The client sends ``A = g^a``; the pool answers with
the user's salt, ``B = k*v + g^b`` (``v = g^x``, ``x`` hashed from the salt and the password)
and a secret block; both sides derive the same 16-byte key from ``S`` and the client signs
the secret block and a timestamp with it (``PASSWORD_VERIFIER``).

Cognito's variant of SRP-6a is the one of amazon-cognito-identity-js's AuthenticationHelper,
which every Cognito SRP client follows: the 3072-bit group of RFC 5054 with ``g = 2``,
SHA-256 over *sign-padded* hex (a leading ``00`` when the top bit is set, as Java's
BigInteger writes it), ``x = H(salt | H(pool | user | ":" | password))`` and an HKDF with
the info ``"Caldera Derived Key"``. ``tests/unit/local/test_cognito_srp.py`` pins a known
answer computed with an independent client (pycognito's ``AWSSRP``).

The server half is here for the emulator (:mod:`pipeline.local.cognito_patches`): moto
answers ``USER_SRP_AUTH`` with random numbers and accepts any signature, so without it a
local sign-in would never check the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Final

from pipeline.errors import ConfigurationError

N: Final = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D226"
    "1AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
G: Final = 2
_INFO: Final = b"Caldera Derived Key\x01"
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def pad_hex(value: int | str) -> str:
    """Hex of a non-negative number as a signed big-endian integer writes it (even length,
    ``00`` in front when the top bit would read as a sign)."""
    text = f"{value:x}" if isinstance(value, int) else value
    if len(text) % 2:
        return "0" + text
    return "00" + text if text[0] in "89abcdefABCDEF" else text


def _hash_hex(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K: Final = int(_hash_hex(pad_hex(N) + pad_hex(G)), 16)


def pool_name(pool_id: str) -> str:
    """The part of ``<region>_<name>`` the proofs hash."""
    return pool_id.split("_", 1)[1]


def private_x(pool: str, user_id: str, password: str, salt_hex: str) -> int:
    """``x = H(salt | H(pool | user | ":" | password))``."""
    inner = hashlib.sha256(f"{pool}{user_id}:{password}".encode()).hexdigest()
    return int(_hash_hex(pad_hex(salt_hex) + inner), 16)


def scrambler(big_a: int, big_b: int) -> int:
    """``u = H(A | B)``; zero would let ``S`` ignore the password, so it is refused."""
    u = int(_hash_hex(pad_hex(big_a) + pad_hex(big_b)), 16)
    if u == 0:
        raise ConfigurationError("SRP: H(A | B) is zero; start the sign-in again")
    return u


def session_key(shared: int, u: int) -> bytes:
    """The 16-byte key both sides derive from ``S`` (HKDF-SHA256, salt ``u``)."""
    prk = hmac.new(bytes.fromhex(pad_hex(u)), bytes.fromhex(pad_hex(shared)), "sha256").digest()
    return hmac.new(prk, _INFO, "sha256").digest()[:16]


def timestamp(now: datetime) -> str:
    """Cognito's ``TIMESTAMP``: ``Tue Mar 3 09:05:07 UTC 2026`` (day not zero-padded)."""
    now = now.astimezone(UTC)
    return (
        f"{_DAYS[now.weekday()]} {_MONTHS[now.month - 1]} {now.day} {now:%H:%M:%S} UTC {now.year}"
    )


def claim_signature(key: bytes, pool: str, user_id: str, secret_block: str, when: str) -> str:
    """``PASSWORD_CLAIM_SIGNATURE``: HMAC-SHA256 of pool, user, secret block and timestamp."""
    message = pool.encode() + user_id.encode() + base64.b64decode(secret_block) + when.encode()
    return base64.b64encode(hmac.new(key, message, "sha256").digest()).decode()


class SrpClient:
    """One SRP sign-in of a user pool: ``auth_parameters`` first, ``answer`` to the challenge."""

    def __init__(self, pool_id: str, *, small_a: int | None = None) -> None:
        self.pool = pool_name(pool_id)
        self.small_a = small_a if small_a is not None else secrets.randbelow(N - 2) + 2
        self.big_a = pow(G, self.small_a, N)

    def auth_parameters(self, username: str) -> dict[str, str]:
        """``USERNAME`` and ``SRP_A`` of ``InitiateAuth``."""
        return {"USERNAME": username, "SRP_A": f"{self.big_a:x}"}

    def answer(
        self, challenge: dict[str, str], password: str, now: datetime | None = None
    ) -> dict[str, str]:
        """The ``PASSWORD_VERIFIER`` responses that prove ``password``."""
        user_id = challenge["USER_ID_FOR_SRP"]
        big_b = int(challenge["SRP_B"], 16)
        if big_b % N == 0:
            raise ConfigurationError("SRP: the pool sent B = 0 (mod N); refusing to answer")
        u = scrambler(self.big_a, big_b)
        x = private_x(self.pool, user_id, password, challenge["SALT"])
        shared = pow(big_b - K * pow(G, x, N), self.small_a + u * x, N)
        when = timestamp(now or datetime.now(UTC))
        secret_block = challenge["SECRET_BLOCK"]
        return {
            "USERNAME": challenge.get("USERNAME", user_id),
            "TIMESTAMP": when,
            "PASSWORD_CLAIM_SECRET_BLOCK": secret_block,
            "PASSWORD_CLAIM_SIGNATURE": claim_signature(
                session_key(shared, u), self.pool, user_id, secret_block, when
            ),
        }


class SrpServer:
    """The pool's half for one sign-in: ``B`` from the stored password, then the check."""

    def __init__(
        self,
        pool_id: str,
        user_id: str,
        password: str,
        salt_hex: str,
        *,
        small_b: int | None = None,
    ) -> None:
        self.pool = pool_name(pool_id)
        self.user_id = user_id
        self.verifier = pow(G, private_x(self.pool, user_id, password, salt_hex), N)
        self.small_b = small_b if small_b is not None else secrets.randbelow(N - 2) + 2
        self.big_b = (K * self.verifier + pow(G, self.small_b, N)) % N

    def verifies(self, big_a_hex: str, responses: dict[str, str]) -> bool:
        """Whether the ``PASSWORD_VERIFIER`` responses prove the password."""
        big_a = int(big_a_hex, 16)
        if big_a % N == 0:
            return False
        u = scrambler(big_a, self.big_b)
        shared = pow(big_a * pow(self.verifier, u, N), self.small_b, N)
        expected = claim_signature(
            session_key(shared, u),
            self.pool,
            self.user_id,
            responses.get("PASSWORD_CLAIM_SECRET_BLOCK", ""),
            responses.get("TIMESTAMP", ""),
        )
        return hmac.compare_digest(expected, responses.get("PASSWORD_CLAIM_SIGNATURE", ""))
