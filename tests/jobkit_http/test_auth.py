"""Bearer-token authentication with real RS256 keys, a real JWKS server, a real data folder."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import stat
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm
from returns.result import Failure, Result, Success

from jobkit_http import auth, keys
from jobkit_http.settings import Settings
from tests.jobkit_http.jwks_server import JWKS_PATH, METADATA_PATH, JwksServer

T = TypeVar("T")

TENANT = "7f3c1b52-0000-4000-8000-00000000cafe"
OTHER_TENANT = "0b9e2a11-0000-4000-8000-00000000beef"
AUDIENCE = "api://jobkit-test"
SCOPE = "Jobs.ReadWrite"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@attrs.frozen
class Key:
    kid: str
    private: rsa.RSAPrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        # Shaped like an Entra JWKS entry: no `alg`, `use: sig`.
        return {**RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True), "kid": self.kid}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(kid: str) -> Key:
    return Key(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def key_a() -> Key:
    return new_key("key-a")


@pytest.fixture(scope="module")
def key_b() -> Key:
    return new_key("key-b")


@pytest.fixture
def server(key_a: Key) -> Iterator[JwksServer]:
    running = JwksServer(issuer=V2_ISSUER).start()
    running.jwks = {"keys": [{**key_a.jwk, "use": "sig"}]}
    yield running
    running.stop()


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def claims(at: datetime | float | None = None, **changes: Any) -> dict[str, Any]:
    """Entra v2 access-token claims valid at `at` (default: the real now); `None` drops a claim."""
    now = time.time() if at is None else at.timestamp() if isinstance(at, datetime) else at
    base: dict[str, Any] = {
        "iss": V2_ISSUER,
        "aud": AUDIENCE,
        "tid": TENANT,
        "oid": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
        "sub": "pairwise-subject",
        "name": "Ada Lovelace",
        "preferred_username": "ada@example.com",
        "scp": f"User.Read {SCOPE}",
        "ver": "2.0",
        "iat": int(now) - 10,
        "nbf": int(now) - 10,
        "exp": int(now) + 3600,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(key: Key, payload: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": kid or key.kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def settings(server: JwksServer, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "auth": "entra",
        "entra_tenant_id": TENANT,
        "entra_audience": AUDIENCE,
        "entra_metadata_url": server.metadata_url,
        **changes,
    }
    return Settings(**values)


def run(body: Callable[[httpx.AsyncClient], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await body(http)

    return asyncio.run(main())


def entra(
    server: JwksServer, header: str | None, **changes: Any
) -> Result[auth.Principal, auth.AuthFailure]:
    async def body(http: httpx.AsyncClient) -> Result[auth.Principal, auth.AuthFailure]:
        return await auth.entra_authenticator(settings(server, **changes), http).authenticate(
            header
        )

    return run(body)


def jwks_authenticator(
    server: JwksServer, http: httpx.AsyncClient, ticks: Ticks, **source: Any
) -> auth.Authenticator:
    return auth.Authenticator(
        issuers=auth.entra_issuers(TENANT, allow_v1=False),
        audience=AUDIENCE,
        key_source=keys.JwksKeySource(server.metadata_url, http, clock=ticks, **source),
        scope=SCOPE,
        tenant=TENANT,
    )


def accepted(result: Result[auth.Principal, auth.AuthFailure]) -> auth.Principal:
    if isinstance(result, Failure):
        pytest.fail(f"refused: {result.failure()}")
    return result.unwrap()


def refused(
    result: Result[auth.Principal, auth.AuthFailure], status: int, *words: str, token: str = ""
) -> auth.AuthFailure:
    if isinstance(result, Success):
        pytest.fail(f"accepted: {result.unwrap()}")
    failure = result.failure()
    assert failure.status == status, failure
    for word in words:
        assert word in failure.detail, failure.detail
    if status == 401:
        assert failure.www_authenticate.startswith('Bearer realm="jobkit"')
    if token:
        assert token not in failure.detail
        assert token not in failure.www_authenticate
    return failure


def invalid(result: Result[auth.Principal, auth.AuthFailure], *words: str) -> auth.AuthFailure:
    failure = refused(result, 401, *words)
    assert 'error="invalid_token"' in failure.www_authenticate
    assert "error_description=" in failure.www_authenticate
    return failure


# --- Entra ID: accepted tokens ---------------------------------------------------------------


def test_a_v2_user_token_with_the_scope_is_accepted(server: JwksServer, key_a: Key) -> None:
    principal = accepted(entra(server, "Bearer " + sign(key_a, claims())))
    assert principal == auth.Principal(
        user_id=f"{TENANT}:0000aaaa-11bb-cccc-dd22-eeeeee333333",
        tenant_id=TENANT,
        object_id="0000aaaa-11bb-cccc-dd22-eeeeee333333",
        name="Ada Lovelace",
        scopes=frozenset({"User.Read", SCOPE}),
        roles=frozenset(),
    )


def test_the_scheme_is_case_insensitive_and_the_name_falls_back(
    server: JwksServer, key_a: Key
) -> None:
    token = sign(key_a, claims(name=None))
    assert accepted(entra(server, "bearer  " + token)).name == "ada@example.com"


def test_an_app_role_is_accepted_instead_of_the_scope(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(scp=None, roles=["Jobs.Daemon"], name=None, preferred_username=None))
    principal = accepted(entra(server, f"Bearer {token}", entra_role="Jobs.Daemon"))
    assert (principal.roles, principal.scopes, principal.name) == (
        frozenset({"Jobs.Daemon"}),
        frozenset(),
        None,
    )
    # A role-only deployment (no scope configured) accepts it too.
    accepted(entra(server, f"Bearer {token}", entra_scope=None, entra_role="Jobs.Daemon"))


# --- Entra ID: refused tokens ----------------------------------------------------------------


def test_wrong_audience_is_refused(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(aud="api://someone-else"))
    invalid(entra(server, f"Bearer {token}"), "audience")


def test_wrong_issuer_is_refused(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"))
    invalid(entra(server, f"Bearer {token}"), "issuer")


def test_a_v1_token_is_refused_unless_v1_is_allowed(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(iss=V1_ISSUER, ver="1.0", name=None, preferred_username=None))
    invalid(entra(server, f"Bearer {token}"), "issuer")
    principal = accepted(entra(server, f"Bearer {token}", entra_allow_v1=True))
    assert principal.tenant_id == TENANT


def test_an_expired_token_is_refused(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(time.time() - 7200))
    invalid(entra(server, f"Bearer {token}"), "expired")


def test_a_token_not_yet_valid_is_refused(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(nbf=int(time.time()) + 600))
    invalid(entra(server, f"Bearer {token}"), "not valid yet", "nbf")
    token = sign(key_a, claims(iat=int(time.time()) + 600, nbf=None))
    invalid(entra(server, f"Bearer {token}"), "not valid yet", "iat")


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({"exp": NOW.timestamp() - 59}, True),
        ({"exp": NOW.timestamp() - 61}, False),
        ({"exp": NOW.timestamp()}, True),
        ({"nbf": NOW.timestamp() + 59}, True),
        ({"nbf": NOW.timestamp() + 61}, False),
        ({"iat": NOW.timestamp() + 59, "nbf": None}, True),
        ({"iat": NOW.timestamp() + 61, "nbf": None}, False),
    ],
)
def test_times_are_checked_with_sixty_seconds_of_leeway(
    key_a: Key, changes: dict[str, Any], ok: bool
) -> None:
    authenticator = auth.Authenticator(
        issuers=[V2_ISSUER],
        audience=AUDIENCE,
        key_source=keys.StaticKeySource({key_a.kid: key_a.private.public_key()}),
        scope=SCOPE,
        tenant=TENANT,
        clock=lambda: NOW,
    )
    token = sign(key_a, claims(NOW, **changes))
    result = asyncio.run(authenticator.authenticate(f"Bearer {token}"))
    if ok:
        accepted(result)
    else:
        invalid(result, "valid" if "exp" not in changes else "expired")


def test_alg_none_is_refused(server: JwksServer, key_a: Key) -> None:
    token = f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': key_a.kid})}.{segment(claims())}."
    invalid(entra(server, f"Bearer {token}"), "algorithm")


def test_hs256_signed_with_the_public_key_is_refused(server: JwksServer, key_a: Key) -> None:
    # The classic confusion attack: the public key (which anyone can fetch) used as an HMAC secret.
    head = segment({"alg": "HS256", "typ": "JWT", "kid": key_a.kid})
    signing_input = f"{head}.{segment(claims())}"
    mac = hmac.new(key_a.public_pem, signing_input.encode(), hashlib.sha256).digest()
    invalid(entra(server, f"Bearer {signing_input}.{b64(mac)}"), "algorithm")


def test_other_algorithms_are_refused(server: JwksServer, key_a: Key) -> None:
    token = jwt.encode(claims(), key_a.private, algorithm="PS256", headers={"kid": key_a.kid})
    invalid(entra(server, f"Bearer {token}"), "algorithm")


def test_a_tampered_payload_fails_the_signature(server: JwksServer, key_a: Key) -> None:
    head, _, sig = sign(key_a, claims()).split(".")
    forged = f"{head}.{segment(claims(oid='someone-else', scp=SCOPE))}.{sig}"
    invalid(entra(server, f"Bearer {forged}"), "signature")


def test_a_token_signed_by_another_key_under_a_known_kid_fails_the_signature(
    server: JwksServer, key_a: Key, key_b: Key
) -> None:
    invalid(entra(server, "Bearer " + sign(key_b, claims(), kid=key_a.kid)), "signature")


def test_a_missing_scope_is_403_insufficient_scope(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(scp="User.Read"))
    failure = refused(entra(server, f"Bearer {token}"), 403, SCOPE, token=token)
    assert failure.www_authenticate.startswith(
        f'Bearer realm="jobkit", error="insufficient_scope", scope="{SCOPE}"'
    )
    # A role that is not the configured one does not help.
    token = sign(key_a, claims(scp=None, roles=["Jobs.Reader"]))
    refused(entra(server, f"Bearer {token}", entra_role="Jobs.Daemon"), 403, "Jobs.Daemon")


@pytest.mark.parametrize("claim", ["tid", "oid"])
def test_missing_tid_or_oid_is_401(server: JwksServer, key_a: Key, claim: str) -> None:
    invalid(entra(server, "Bearer " + sign(key_a, claims(**{claim: None}))), claim)


@pytest.mark.parametrize("claim", ["exp", "iat", "aud", "iss"])
def test_missing_registered_claims_are_401(server: JwksServer, key_a: Key, claim: str) -> None:
    invalid(entra(server, "Bearer " + sign(key_a, claims(**{claim: None}))), claim)


def test_a_token_of_another_tenant_is_refused_even_under_our_issuer(
    server: JwksServer, key_a: Key
) -> None:
    # Validly signed, our tenant's issuer, our audience and scope: only `tid` differs. The user
    # id is built from `tid`, so accepting it would file the jobs under another tenant's name.
    token = sign(key_a, claims(tid=OTHER_TENANT))
    failure = invalid(entra(server, f"Bearer {token}"), "tid", "tenant")
    assert OTHER_TENANT not in failure.detail
    # The same token with our `tid` passes: nothing else about it was wrong.
    accepted(entra(server, "Bearer " + sign(key_a, claims())))


def test_a_v1_token_of_another_tenant_is_refused(server: JwksServer, key_a: Key) -> None:
    token = sign(key_a, claims(iss=V1_ISSUER, ver="1.0", tid=OTHER_TENANT))
    invalid(entra(server, f"Bearer {token}", entra_allow_v1=True), "tid")


def test_a_local_token_names_the_local_tenant(tmp_path: Path) -> None:
    pair = keys.ensure_keypair(tmp_path)
    now = datetime.now(UTC)
    forged = {
        "iss": keys.ISSUER,
        "aud": keys.AUDIENCE,
        "tid": "someone-else",
        "oid": "alice",
        "scp": keys.SCOPE,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 600,
    }
    token = jwt.encode(forged, pair.private_key, algorithm="RS256", headers={"kid": pair.kid})
    invalid(asyncio.run(auth.local_authenticator(tmp_path).authenticate(f"Bearer {token}")), "tid")


def test_a_missing_kid_is_refused(server: JwksServer, key_a: Key) -> None:
    token = jwt.encode(claims(), key_a.private, algorithm="RS256")
    invalid(entra(server, f"Bearer {token}"), "kid")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_asks_for_a_bearer_token(server: JwksServer, header: str | None) -> None:
    failure = refused(entra(server, header), 401, "Bearer")
    assert failure.www_authenticate == 'Bearer realm="jobkit"'


@pytest.mark.parametrize("header", ["Basic YWRhOnNlY3JldA==", "Token abc", "eyJhbGciOi.x.y"])
def test_another_scheme_is_refused_without_an_error_code(server: JwksServer, header: str) -> None:
    failure = refused(entra(server, header), 401, "Bearer")
    assert failure.www_authenticate == 'Bearer realm="jobkit"'


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d.e",
        "!!!.???.***",
        "ünïcödé.tøken.✓",
        segment({"alg": "RS256", "kid": "key-a"}) + ".bm90IGpzb24.c2ln",
        segment({"alg": "RS256", "kid": "key-a"}) + "." + b64(b"[1, 2]") + ".c2ln",
        b64(b"[]") + ".e30.c2ln",
        "x" * 20_000,
        "null",
        "two words",
    ],
)
def test_garbage_is_a_clean_401(server: JwksServer, token: str) -> None:
    failure = invalid(entra(server, f"Bearer {token}"))
    assert token not in failure.detail
    assert token not in failure.www_authenticate


HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
JOSE = st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku"]), JSON)
JWT_SHAPED = st.builds(
    lambda head, body, sig: (
        f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}.{b64(sig)}"
    ),
    JOSE | st.fixed_dictionaries({"alg": st.just("RS256"), "kid": st.just("key-a")}),
    st.dictionaries(st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "tid", "oid"]), JSON),
    st.binary(max_size=300),
)


@given(header=st.text(max_size=200) | JWT_SHAPED.map(lambda token: f"Bearer {token}"))
def test_any_header_is_refused_cleanly(key_a: Key, header: str) -> None:
    authenticator = auth.Authenticator(
        issuers=[V2_ISSUER],
        audience=AUDIENCE,
        key_source=keys.StaticKeySource({key_a.kid: key_a.private.public_key()}),
        scope=SCOPE,
        tenant=TENANT,
    )
    failure = refused(asyncio.run(authenticator.authenticate(header)), 401)
    assert HEADER_VALUE.fullmatch(failure.www_authenticate)


def test_a_token_with_non_numeric_times_is_refused(server: JwksServer, key_a: Key) -> None:
    invalid(entra(server, "Bearer " + sign(key_a, claims(exp="tomorrow"))), "exp")
    invalid(entra(server, "Bearer " + sign(key_a, claims(exp=True))), "exp")


# --- The JWKS key source ---------------------------------------------------------------------


def test_the_default_metadata_url_is_the_tenants_v2_document() -> None:
    async def body(http: httpx.AsyncClient) -> auth.Authenticator:
        return auth.entra_authenticator(
            Settings(auth="entra", entra_tenant_id=TENANT, entra_audience=AUDIENCE), http
        )

    source = run(body).key_source
    assert isinstance(source, keys.JwksKeySource)
    assert source.metadata_url == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration"
    )


def test_an_unknown_kid_refreshes_once_then_the_cooldown_holds(
    server: JwksServer, key_a: Key, key_b: Key
) -> None:
    ticks = Ticks()
    rogue = "Bearer " + sign(key_b, claims(), kid="rogue")

    async def body(http: httpx.AsyncClient) -> None:
        authenticator = jwks_authenticator(server, http, ticks)
        accepted(await authenticator.authenticate("Bearer " + sign(key_a, claims())))
        assert (server.count(METADATA_PATH), server.count(JWKS_PATH)) == (1, 1)
        invalid(await authenticator.authenticate(rogue), "key")
        assert server.count(JWKS_PATH) == 1  # fetched a moment ago: within the cool-down
        ticks.now = 301.0
        for _ in range(20):
            invalid(await authenticator.authenticate(rogue), "key")
        assert server.count(JWKS_PATH) == 2  # one refresh for the whole flood
        ticks.now = 600.0
        invalid(await authenticator.authenticate(rogue), "key")
        assert server.count(JWKS_PATH) == 2
        ticks.now = 602.0
        invalid(await authenticator.authenticate(rogue), "key")
        assert server.count(JWKS_PATH) == 3
        assert server.count(METADATA_PATH) == 1  # the jwks_uri is remembered

    run(body)


def test_the_cooldown_is_configurable(server: JwksServer, key_a: Key, key_b: Key) -> None:
    ticks = Ticks()
    rogue = "Bearer " + sign(key_b, claims(), kid="rogue")

    async def body(http: httpx.AsyncClient) -> None:
        authenticator = jwks_authenticator(server, http, ticks, cooldown_seconds=5)
        invalid(await authenticator.authenticate(rogue), "key")
        ticks.now = 5.0
        invalid(await authenticator.authenticate(rogue), "key")
        assert server.count(JWKS_PATH) == 2

    run(body)


def test_concurrent_refreshes_coalesce(server: JwksServer, key_a: Key) -> None:
    ticks = Ticks()
    header = "Bearer " + sign(key_a, claims())

    async def body(http: httpx.AsyncClient) -> None:
        authenticator = jwks_authenticator(server, http, ticks)
        results = await asyncio.gather(*(authenticator.authenticate(header) for _ in range(25)))
        for result in results:
            accepted(result)
        assert (server.count(METADATA_PATH), server.count(JWKS_PATH)) == (1, 1)

    run(body)


def test_key_rotation_needs_no_restart(server: JwksServer, key_a: Key, key_b: Key) -> None:
    ticks = Ticks()
    old = "Bearer " + sign(key_a, claims())
    new = "Bearer " + sign(key_b, claims())

    async def body(http: httpx.AsyncClient) -> None:
        authenticator = jwks_authenticator(server, http, ticks)
        accepted(await authenticator.authenticate(old))
        server.jwks = {"keys": [key_b.jwk]}  # the provider rolls its key
        ticks.now = 10.0
        invalid(await authenticator.authenticate(new), "key")  # cool-down still holds
        ticks.now = 300.0
        accepted(await authenticator.authenticate(new))
        invalid(await authenticator.authenticate(old), "key")  # the withdrawn key is gone

    run(body)


def test_keys_older_than_max_age_are_refreshed(server: JwksServer, key_a: Key) -> None:
    ticks = Ticks()
    header = "Bearer " + sign(key_a, claims())

    async def body(http: httpx.AsyncClient) -> None:
        authenticator = jwks_authenticator(server, http, ticks, max_age_seconds=3600)
        accepted(await authenticator.authenticate(header))
        ticks.now = 3600.0
        accepted(await authenticator.authenticate(header))
        assert server.count(JWKS_PATH) == 2
        server.status = 503  # a failed refresh keeps the keys already known
        ticks.now = 7200.0
        accepted(await authenticator.authenticate(header))
        assert server.count(JWKS_PATH) == 3

    run(body)


def test_a_provider_that_is_down_gives_a_clean_401(
    key_a: Key, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = f"http://127.0.0.1:{port}/tenant/v2.0/.well-known/openid-configuration"

    async def body(http: httpx.AsyncClient) -> Result[auth.Principal, auth.AuthFailure]:
        authenticator = auth.entra_authenticator(
            Settings(
                auth="entra",
                entra_tenant_id=TENANT,
                entra_audience=AUDIENCE,
                entra_metadata_url=down,
            ),
            http,
        )
        return await authenticator.authenticate("Bearer " + sign(key_a, claims()))

    with caplog.at_level(logging.WARNING, logger="jobkit_http.keys"):
        invalid(run(body), "signing keys could not be fetched", "could not be reached")
    assert any("could not fetch signing keys" in r.getMessage() for r in caplog.records)


def test_a_failing_provider_is_retried_after_a_short_pause(server: JwksServer, key_a: Key) -> None:
    ticks = Ticks()
    header = "Bearer " + sign(key_a, claims())
    server.status = 500

    async def body(http: httpx.AsyncClient) -> None:
        authenticator = jwks_authenticator(server, http, ticks)
        invalid(await authenticator.authenticate(header), "HTTP 500")
        server.status = 200
        ticks.now = 5.0
        invalid(await authenticator.authenticate(header), "HTTP 500")  # not hammered
        ticks.now = 10.0
        accepted(await authenticator.authenticate(header))
        assert server.count(METADATA_PATH) == 2

    run(body)


def test_a_jwks_without_usable_keys_is_a_clean_401(server: JwksServer, key_a: Key) -> None:
    server.jwks = {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}, {"kty": "RSA"}, "x"]}
    invalid(entra(server, "Bearer " + sign(key_a, claims())), "no usable RSA signing key")


# --- Local mode ------------------------------------------------------------------------------


def test_the_local_key_pair_is_created_once_and_kept_private(tmp_path: Path) -> None:
    first = keys.ensure_keypair(tmp_path)
    second = keys.ensure_keypair(tmp_path)
    assert first.kid == second.kid == keys.thumbprint(second.public_key)
    files = list((tmp_path / "keys").iterdir())
    assert [f.name for f in files] == ["local-signing-key.pem"]  # no temporary left behind
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_a_local_token_is_accepted(tmp_path: Path) -> None:
    token = keys.issue_token(tmp_path, "alice@example.org", now=datetime.now(UTC))
    principal = accepted(
        asyncio.run(auth.local_authenticator(tmp_path).authenticate(f"Bearer {token}"))
    )
    assert (principal.user_id, principal.name, principal.scopes) == (
        "local:alice@example.org",
        "alice@example.org",
        frozenset({SCOPE}),
    )


def test_a_local_token_expires(tmp_path: Path) -> None:
    token = keys.issue_token(
        tmp_path, "alice", ttl_seconds=60, now=datetime(2020, 1, 1, tzinfo=UTC)
    )
    invalid(
        asyncio.run(auth.local_authenticator(tmp_path).authenticate(f"Bearer {token}")), "expired"
    )


def test_a_token_from_another_data_folder_is_refused(tmp_path: Path) -> None:
    token = keys.issue_token(tmp_path / "elsewhere", "alice", now=datetime.now(UTC))
    authenticator = auth.local_authenticator(tmp_path / "here")
    invalid(asyncio.run(authenticator.authenticate(f"Bearer {token}")), "key")


def test_an_entra_token_is_refused_in_local_mode(tmp_path: Path, key_a: Key) -> None:
    pair = keys.ensure_keypair(tmp_path)
    forged = Key(pair.kid, key_a.private)  # right kid, wrong key
    authenticator = auth.local_authenticator(tmp_path)
    invalid(
        asyncio.run(authenticator.authenticate("Bearer " + sign(forged, claims()))), "signature"
    )


@pytest.mark.parametrize("user", ["", "a" * 65, "bob smith", "ève", "a/b", "x:y", "tab\t"])
def test_bad_user_names_are_refused(tmp_path: Path, user: str) -> None:
    with pytest.raises(ValueError, match="bad user name"):
        keys.issue_token(tmp_path, user, now=datetime.now(UTC))


@pytest.mark.parametrize("user", ["a", "a" * 64, "first.last_1@example-corp.com"])
def test_good_user_names_are_kept(tmp_path: Path, user: str) -> None:
    assert keys.check_user(user) == user
