"""Local users' authenticator: RFC 6238 codes, never one about to expire, secrets kept 0600."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.users import Authenticator, totp_code

if TYPE_CHECKING:
    from pathlib import Path

#: RFC 6238 appendix B's SHA-1 seed, base32 as Cognito hands out secrets.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("at", "code"),
    # The RFC's 8-digit values, last 6 digits (Cognito's codes are 6 digits).
    [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_given_the_rfc_6238_seed_when_coded_then_the_rfc_values(at: int, code: str) -> None:
    assert totp_code(RFC_SECRET, at) == code


def test_given_an_unpadded_lower_case_secret_when_coded_then_it_is_padded_first() -> None:
    assert totp_code(RFC_SECRET.rstrip("=").lower(), 59) == "287082"
    with pytest.raises(ConfigurationError, match="not base32"):
        totp_code("not base32!", 59)


def test_given_a_code_about_to_expire_when_asked_then_the_next_one_is_waited_for(
    tmp_path: Path,
) -> None:
    slept: list[float] = []
    authenticator = Authenticator(tmp_path, clock=lambda: 58.5, sleep=slept.append)
    assert authenticator.code(RFC_SECRET) == totp_code(RFC_SECRET, 60)
    assert slept == [1.5]
    fresh = Authenticator(tmp_path, clock=lambda: 31.0, sleep=slept.append)
    assert fresh.code(RFC_SECRET) == totp_code(RFC_SECRET, 31)
    assert slept == [1.5]


def test_given_a_secret_when_saved_then_only_its_owner_reads_it_and_links_are_not_followed(
    tmp_path: Path,
) -> None:
    authenticator = Authenticator(tmp_path / "auth")
    assert authenticator.secret("pool_1", "../ann") is None
    authenticator.save("pool_1", "../ann", RFC_SECRET)
    (saved,) = (tmp_path / "auth").iterdir()
    assert authenticator.secret("pool_1", "../ann") == RFC_SECRET
    assert authenticator.secret("pool_2", "../ann") is None
    assert (oct(saved.stat().st_mode & 0o777), oct((tmp_path / "auth").stat().st_mode & 0o777)) == (
        "0o600",
        "0o700",
    )
    saved.unlink()
    saved.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        authenticator.save("pool_1", "../ann", RFC_SECRET)
    assert not (tmp_path / "elsewhere").exists()
