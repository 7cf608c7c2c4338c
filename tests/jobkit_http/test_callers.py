"""Who may call the internal endpoints, checked without a network: a Google-style ID token
for the dispatch account and audience passes; every other token, a wrong secret, and a
token where only the secret is accepted are refused, each saying why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from returns.result import Failure, Success

from jobkit_http import callers, keys

ACCOUNT = "dispatch@p.iam.gserviceaccount.com"
AUDIENCE = "https://jobkit-1.europe-west1.run.app"
SECRET = "a-secret-long-enough-0123"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(**claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(body, KEY, algorithm="RS256", headers={"kid": "k1"})


def checker(*, account: str | None = ACCOUNT, secret: str | None = SECRET) -> callers.Callers:
    return callers.Callers(
        service_account=account,
        audience=AUDIENCE,
        secret=secret,
        key_source=keys.StaticKeySource({"k1": KEY.public_key()}),
    )


def check(subject: callers.Callers, headers: dict[str, str]) -> str:
    match asyncio.run(subject.check(headers)):
        case Success(who):
            return f"ok:{who}"
        case Failure(failure):
            assert failure.status == 401
            return f"refused:{failure.detail}"
    raise AssertionError("unreachable")


def test_the_dispatch_accounts_token_and_the_secret_pass() -> None:
    assert check(checker(), {"authorization": f"Bearer {token()}"}) == f"ok:{ACCOUNT}"
    assert check(checker(), {"x-jobkit-dispatch-secret": SECRET}) == "ok:secret"
    issuer = token(iss="accounts.google.com")  # Google uses both spellings
    assert check(checker(), {"authorization": f"Bearer {issuer}"}) == f"ok:{ACCOUNT}"


def bearer(**claims: object) -> Callable[[], dict[str, str]]:
    """Headers with a token made when the test runs: made at collection, a token with ten
    minutes to live could expire before a long suite reaches it."""
    return lambda: {"authorization": f"Bearer {token(**claims)}"}


def given(headers: dict[str, str]) -> Callable[[], dict[str, str]]:
    return lambda: headers


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (given({}), "OIDC token"),
        (given({"authorization": "Basic abc"}), "OIDC token"),
        (given({"authorization": "Bearer nope"}), "malformed"),
        (bearer(email="x@y.z"), "service account"),
        (bearer(email_verified=False), "service account"),
        (bearer(aud="https://else"), "audience"),
        (bearer(iss="https://evil"), "not issued by Google"),
        (bearer(exp=int(time.time()) - 3600), "expired"),
        (given({"x-jobkit-dispatch-secret": "wrong"}), "secret is wrong"),
    ],
)
def test_everything_else_is_refused_saying_why(
    headers: Callable[[], dict[str, str]], why: str
) -> None:
    outcome = check(checker(), headers())
    assert outcome.startswith("refused:")
    assert why in outcome


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
    }
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"})
    assert check(checker(), {"authorization": f"Bearer {forged}"}).startswith("refused:")


def test_with_a_secret_alone_no_token_is_accepted() -> None:
    only_secret = checker(account=None)
    refused = check(only_secret, {"authorization": f"Bearer {token()}"})
    assert refused == "refused:this endpoint takes the dispatch secret only"
    assert check(only_secret, {"x-jobkit-dispatch-secret": SECRET}) == "ok:secret"


def test_with_a_service_account_alone_a_secret_is_refused() -> None:
    assert check(checker(secret=None), {"x-jobkit-dispatch-secret": SECRET}).startswith("refused:")


def test_neither_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="service account or a secret"):
        checker(account=None, secret=None)
