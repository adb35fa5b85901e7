"""Local users of the emulator's user pool, and their tokens, for the local gateway.

Users are created with a permanent password (no "force change password" challenge) and
sign in the one way the template's app client allows: SRP (``USER_SRP_AUTH``,
:mod:`pipeline.local.cognito_srp`), so the password never leaves this process, then a TOTP
code, which the pool requires of every user. The first sign-in enrols the user's
authenticator (``MFA_SETUP``: ``AssociateSoftwareToken``, ``VerifySoftwareToken``) and keeps
its secret where an authenticator app would: an :class:`Authenticator` in the local state
directory, so that later sign-ins (``fmcg token``) answer ``SOFTWARE_TOKEN_MFA``. The id
token is exactly what Cognito hands a signed-in user; moto puts ``cognito:groups`` (a JSON
list) in it for users who belong to groups, as Cognito does.

TOTP codes are RFC 6238 (SHA-1, 6 digits, 30 s, what Cognito's authenticator enrolment
uses), computed with ``cryptography``'s TOTP: already a dependency (``pyjwt[crypto]``), so
no pyotp.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from pipeline.aws_errors import (
    INVALID_PASSWORD,
    NOT_AUTHORIZED,
    USER_NOT_FOUND,
    USERNAME_EXISTS,
    error_code,
)
from pipeline.errors import ConfigurationError, InvalidInputError, NotFoundError
from pipeline.local.cognito_srp import SrpClient
from pipeline.local.stack import state_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from pipeline.local.stack import LocalStack

TOTP_STEP: Final = 30
#: A code with less time left than this is not sent: it could expire on the way.
MIN_CODE_LIFE_S: Final = 3
MAX_CHALLENGES: Final = 4


@dataclass(frozen=True)
class Tokens:
    """The tokens of one sign-in."""

    id_token: str
    access_token: str
    refresh_token: str | None
    expires_in: int


def local_password(username: str) -> str:
    """A password that meets the template's policy; deterministic so ``fmcg token`` works.

    Local users only live in the emulator: a memorable password beats a stored secret.
    """
    return f"Local-{username}-Passw0rd!"


def random_password() -> str:
    """A random password meeting the pool policy (12+ chars, upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits
    return "Aa1!" + "".join(secrets.choice(alphabet) for _ in range(20))


def totp_code(secret: str, at: float) -> str:
    """The RFC 6238 code of a base32 ``secret`` (as Cognito hands it out) at time ``at``."""
    padded = secret.strip().upper() + "=" * (-len(secret.strip()) % 8)
    try:
        key = base64.b32decode(padded)
    except ValueError as e:
        raise ConfigurationError("the authenticator secret is not base32") from e
    totp = TOTP(key, 6, SHA1(), TOTP_STEP, enforce_key_length=False)
    return totp.generate(int(at)).decode()


class Authenticator:
    """The TOTP secrets of local users, one ``0600`` file per pool and user in ``directory``.

    What an authenticator app is for a real user: the secret Cognito handed out at
    enrolment, and the current code.
    """

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.directory = directory
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def local(cls) -> Authenticator:
        """The one under the local state directory (``$FMCG_HOME`` or ``./.fmcg``)."""
        return cls(state_dir() / "authenticator")

    def _path(self, pool_id: str, username: str) -> Path:
        # Hashed: a username may hold characters a file name should not.
        digest = hashlib.sha256(f"{pool_id}\0{username}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.totp"

    def save(self, pool_id: str, username: str, secret: str) -> None:
        """Keep ``secret`` for the user (readable by this OS user only)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(self._path(pool_id, username), flags, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret)

    def secret(self, pool_id: str, username: str) -> str | None:
        """The user's secret, ``None`` before the user enrolled."""
        try:
            fd = os.open(self._path(pool_id, username), os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as source:
            return source.read().strip()

    def code(self, secret: str) -> str:
        """The current code, or the next one when the current has under 3 s to live."""
        now = self._clock()
        left = TOTP_STEP - now % TOTP_STEP
        if left < MIN_CODE_LIFE_S:
            self._sleep(left)
            now += left
        return totp_code(secret, now)


def create_user(
    stack: LocalStack,
    username: str,
    *,
    groups: Iterable[str] = (),
    password: str | None = None,
) -> str:
    """Create (or update) ``username`` with a permanent password and these groups.

    Returns the password. Re-running with the same user is safe: the user is kept, the
    password reset and the groups added. The authenticator is enrolled at the first
    sign-in, as a real user's is.
    """
    cognito = stack.session().client("cognito-idp")
    pool = stack.ref("UserPool")
    password = password or local_password(username)
    try:
        cognito.admin_create_user(UserPoolId=pool, Username=username, MessageAction="SUPPRESS")
    except ClientError as e:
        if error_code(e) != USERNAME_EXISTS:
            raise ConfigurationError(f"cannot create user {username}: {e}") from e
    try:
        cognito.admin_set_user_password(
            UserPoolId=pool, Username=username, Password=password, Permanent=True
        )
    except ClientError as e:
        if error_code(e) == INVALID_PASSWORD:
            raise InvalidInputError(f"password refused for {username}: {_message(e)}") from e
        raise ConfigurationError(f"cannot set the password of {username}: {e}") from e
    for group in groups:
        try:
            cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
        except ClientError as e:
            raise ConfigurationError(f"cannot add {username} to {group}: {e}") from e
    return password


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message") or error)


def _answer_mfa(
    cognito: Any,
    *,
    client_id: str,
    pool_id: str,
    username: str,
    step: dict[str, Any],
    authenticator: Authenticator,
) -> dict[str, Any]:
    """Answer the MFA challenges after the password until the pool hands out tokens."""
    for _ in range(MAX_CHALLENGES):
        challenge = step.get("ChallengeName")
        if challenge is None:
            return step
        name = (step.get("ChallengeParameters") or {}).get("USERNAME", username)
        if challenge == "MFA_SETUP":
            secret = cognito.associate_software_token(Session=step["Session"])
            code = authenticator.code(secret["SecretCode"])
            verified = cognito.verify_software_token(
                Session=secret.get("Session", step["Session"]),
                UserCode=code,
                FriendlyDeviceName="fmcg-local",
            )
            authenticator.save(pool_id, username, secret["SecretCode"])
            step = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="MFA_SETUP",
                Session=verified["Session"],
                ChallengeResponses={"USERNAME": name},
            )
        elif challenge == "SOFTWARE_TOKEN_MFA":
            stored = authenticator.secret(pool_id, username)
            if stored is None:
                raise ConfigurationError(
                    f"{username} has an authenticator enrolled, but not in "
                    f"{authenticator.directory}: create the user again in a new stack"
                )
            step = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="SOFTWARE_TOKEN_MFA",
                Session=step["Session"],
                ChallengeResponses={
                    "USERNAME": name,
                    "SOFTWARE_TOKEN_MFA_CODE": authenticator.code(stored),
                },
            )
        else:
            raise ConfigurationError(f"cannot sign in {username}: challenge {challenge}")
    raise ConfigurationError(f"cannot sign in {username}: more than {MAX_CHALLENGES} challenges")


def sign_in(
    stack: LocalStack,
    username: str,
    password: str | None = None,
    *,
    authenticator: Authenticator | None = None,
) -> Tokens:
    """Sign ``username`` in on the template's app client (SRP, then TOTP): its tokens."""
    cognito = stack.session().client("cognito-idp")
    pool_id, client_id = stack.ref("UserPool"), stack.ref("UserPoolClient")
    srp = SrpClient(pool_id)
    try:
        step: Any = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_SRP_AUTH",
            AuthParameters=srp.auth_parameters(username),
        )
        if step.get("ChallengeName") == "PASSWORD_VERIFIER":
            step = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="PASSWORD_VERIFIER",
                ChallengeResponses=srp.answer(
                    step["ChallengeParameters"], password or local_password(username)
                ),
                **({"Session": step["Session"]} if step.get("Session") else {}),
            )
        step = _answer_mfa(
            cognito,
            client_id=client_id,
            pool_id=pool_id,
            username=username,
            step=step,
            authenticator=authenticator or Authenticator.local(),
        )
    except ClientError as e:
        code = error_code(e)
        if code in {USER_NOT_FOUND, NOT_AUTHORIZED}:
            raise NotFoundError(f"cannot sign in {username}: {code}") from e
        raise ConfigurationError(f"cannot sign in {username}: {e}") from e
    result = step["AuthenticationResult"]
    return Tokens(
        id_token=result["IdToken"],
        access_token=result["AccessToken"],
        refresh_token=result.get("RefreshToken"),
        expires_in=int(result.get("ExpiresIn", 3600)),
    )


def id_token(stack: LocalStack, username: str, password: str | None = None) -> str:
    """The id token of ``username`` (what the API's ``Authorization`` header carries)."""
    return sign_in(stack, username, password).id_token
