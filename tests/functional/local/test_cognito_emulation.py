"""The local user pool signs in as the template declares: SRP only, TOTP MFA, short tokens.

Through the emulator over HTTP, with the pool and client provisioned from the template
(``pipeline.local.cognito_patches`` makes moto enforce what it otherwise only stores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
import pytest
from botocore.exceptions import ClientError

from pipeline.errors import ConfigurationError, NotFoundError
from pipeline.local.cognito_srp import SrpClient
from pipeline.local.users import Authenticator, create_user, local_password, sign_in

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.local.stack import LocalStack


def _cognito(stack: LocalStack) -> Any:
    return stack.session().client("cognito-idp")


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def test_given_the_template_client_when_a_password_flow_is_asked_then_it_is_refused(
    stack: LocalStack,
) -> None:
    create_user(stack, "pat", groups=["ViewerGroup"])
    cognito = _cognito(stack)
    password = {"USERNAME": "pat", "PASSWORD": local_password("pat")}
    with pytest.raises(ClientError) as raised:
        cognito.initiate_auth(
            ClientId=stack.ref("UserPoolClient"),
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters=password,
        )
    assert _error(raised) == (
        "InvalidParameterException",
        "USER_PASSWORD_AUTH flow not enabled for this client",
    )
    with pytest.raises(ClientError) as raised:
        cognito.admin_initiate_auth(
            UserPoolId=stack.ref("UserPool"),
            ClientId=stack.ref("UserPoolClient"),
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters=password,
        )
    assert _error(raised) == (
        "InvalidParameterException",
        "ADMIN_USER_PASSWORD_AUTH flow not enabled for this client",
    )


def test_given_a_user_when_signed_in_twice_then_it_enrols_an_authenticator_then_uses_it(
    stack: LocalStack, tmp_path: Path
) -> None:
    create_user(stack, "ann", groups=["PlannerGroup"])
    authenticator = Authenticator(tmp_path / "authenticator")
    pool = stack.ref("UserPool")

    first = sign_in(stack, "ann", authenticator=authenticator)  # MFA_SETUP
    secret = authenticator.secret(pool, "ann")
    second = sign_in(stack, "ann", authenticator=authenticator)  # SOFTWARE_TOKEN_MFA

    assert secret
    files = list((tmp_path / "authenticator").iterdir())
    assert [oct(f.stat().st_mode & 0o777) for f in files] == ["0o600"]
    for tokens in (first, second):
        claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
        assert claims["cognito:groups"] == ["PlannerGroup"]
        assert claims["exp"] - claims["iat"] == 30 * 60  # IdTokenValidity: 30 minutes
        assert tokens.expires_in == 30 * 60  # AccessTokenValidity
    mfa = _cognito(stack).get_user_pool_mfa_config(UserPoolId=pool)
    assert (mfa["MfaConfiguration"], mfa["SoftwareTokenMfaConfiguration"]) == (
        "ON",
        {"Enabled": True},
    )


def test_given_a_wrong_totp_secret_when_signed_in_then_the_code_is_refused(
    stack: LocalStack, tmp_path: Path
) -> None:
    create_user(stack, "bo")
    authenticator = Authenticator(tmp_path)
    sign_in(stack, "bo", authenticator=authenticator)
    authenticator.save(stack.ref("UserPool"), "bo", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    with pytest.raises(ConfigurationError, match="CodeMismatchException"):
        sign_in(stack, "bo", authenticator=authenticator)


@pytest.mark.parametrize(("username", "password"), [("cy", "Wrong-Passw0rd!"), ("nobody", None)])
def test_given_a_wrong_password_or_an_unknown_user_then_the_same_refusal(
    stack: LocalStack, tmp_path: Path, username: str, password: str | None
) -> None:
    # PreventUserExistenceErrors: an unknown user is not told apart from a wrong password.
    create_user(stack, "cy")
    with pytest.raises(NotFoundError) as refused:
        sign_in(stack, username, password, authenticator=Authenticator(tmp_path))
    assert str(refused.value) == f"cannot sign in {username}: NotAuthorizedException"


def test_given_a_password_proof_when_replayed_then_it_is_refused(stack: LocalStack) -> None:
    create_user(stack, "di")
    cognito = _cognito(stack)
    srp = SrpClient(stack.ref("UserPool"))
    challenge = cognito.initiate_auth(
        ClientId=stack.ref("UserPoolClient"),
        AuthFlow="USER_SRP_AUTH",
        AuthParameters=srp.auth_parameters("di"),
    )
    proof = srp.answer(challenge["ChallengeParameters"], local_password("di"))
    first = cognito.respond_to_auth_challenge(
        ClientId=stack.ref("UserPoolClient"),
        ChallengeName="PASSWORD_VERIFIER",
        ChallengeResponses=proof,
    )
    assert first["ChallengeName"] == "MFA_SETUP"  # the proof held: on to the authenticator
    with pytest.raises(ClientError) as raised:
        cognito.respond_to_auth_challenge(
            ClientId=stack.ref("UserPoolClient"),
            ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses=proof,
        )
    assert _error(raised) == ("NotAuthorizedException", "Incorrect username or password.")


def test_given_the_template_client_when_described_then_the_local_one_has_its_settings(
    stack: LocalStack,
) -> None:
    client = _cognito(stack).describe_user_pool_client(
        UserPoolId=stack.ref("UserPool"), ClientId=stack.ref("UserPoolClient")
    )["UserPoolClient"]
    assert sorted(client["ExplicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert (client["IdTokenValidity"], client["TokenValidityUnits"]["IdToken"]) == (30, "minutes")
