"""Verified tokens are remembered: never past their expiry, nor past their key's withdrawal."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from returns.result import Failure, Result, Success

from jobkit_http import auth, keys

START = datetime(2030, 1, 1, tzinfo=UTC)


@attrs.define
class CountingKeys:
    """A key source over real keys that counts lookups, and whose keys can be withdrawn."""

    held: dict[str, rsa.RSAPublicKey]
    lookups: int = 0

    async def key(self, kid: str) -> Result[rsa.RSAPublicKey, str]:
        self.lookups += 1
        found = self.held.get(kid)
        return Success(found) if found is not None else Failure("unknown key")

    def current(self, kid: str) -> rsa.RSAPublicKey | None:
        return self.held.get(kid)


def setup(tmp_path: Path) -> tuple[CountingKeys, auth.Authenticator, list[datetime]]:
    pair = keys.ensure_keypair(tmp_path)
    source = CountingKeys(held={pair.kid: pair.public_key})
    now = [START]
    verifier = auth.Authenticator(
        issuers=[keys.ISSUER],
        audience=keys.AUDIENCE,
        key_source=source,
        scope=keys.SCOPE,
        tenant=keys.TENANT,
        clock=lambda: now[0],
    )
    return source, verifier, now


def test_a_token_is_verified_once_then_remembered(tmp_path: Path) -> None:
    source, verifier, _ = setup(tmp_path)
    token = "Bearer " + keys.issue_token(tmp_path, "alice", now=START)

    async def run() -> list[str]:
        return [(await verifier.authenticate(token)).unwrap().user_id for _ in range(5)]

    assert asyncio.run(run()) == ["local:alice"] * 5
    assert source.lookups == 1


def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    _, verifier, now = setup(tmp_path)
    token = "Bearer " + keys.issue_token(tmp_path, "alice", ttl_seconds=120, now=START)

    async def run() -> tuple[bool, bool]:
        first = isinstance(await verifier.authenticate(token), Success)
        now[0] = START + timedelta(seconds=120 + auth.LEEWAY_SECONDS + 1)
        later = await verifier.authenticate(token)
        return first, isinstance(later, Failure) and "expired" in later.failure().detail

    assert asyncio.run(run()) == (True, True)


def test_a_withdrawn_key_stops_a_remembered_token_at_once(tmp_path: Path) -> None:
    source, verifier, _ = setup(tmp_path)
    token = "Bearer " + keys.issue_token(tmp_path, "alice", now=START)

    async def run() -> tuple[bool, bool]:
        first = isinstance(await verifier.authenticate(token), Success)
        source.held.clear()  # the provider rotated the key out
        return first, isinstance(await verifier.authenticate(token), Failure)

    assert asyncio.run(run()) == (True, True)


def test_the_memory_is_refreshed_after_its_longest_span(tmp_path: Path) -> None:
    source, verifier, now = setup(tmp_path)
    token = "Bearer " + keys.issue_token(tmp_path, "alice", now=START)

    async def run() -> None:
        await verifier.authenticate(token)
        now[0] = START + timedelta(seconds=auth.CACHE_SECONDS + 1)
        (await verifier.authenticate(token)).unwrap()

    asyncio.run(run())
    assert source.lookups == 2


def test_a_full_cache_is_a_warning_once_per_cache_lifetime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(auth, "CACHE_SIZE", 3)
    _, verifier, now = setup(tmp_path)
    tokens = ["Bearer " + keys.issue_token(tmp_path, f"user-{n}", now=START) for n in range(6)]

    async def run() -> None:
        for token in tokens:
            assert isinstance(await verifier.authenticate(token), Success)

    with caplog.at_level(logging.DEBUG, logger="jobkit_http.auth"):
        asyncio.run(run())
        now[0] = START + timedelta(seconds=auth.CACHE_SECONDS + 1)
        tokens[:] = ["Bearer " + keys.issue_token(tmp_path, "late", now=now[0])]
        asyncio.run(run())
    full = [r for r in caplog.records if "at capacity" in r.getMessage()]
    assert [r.levelno for r in full] == [logging.WARNING, logging.WARNING]
