"""Verification keys: the local key pair and its tokens, a static key set, and a JWKS by `kid`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import attrs
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from returns.result import Failure, Result, Success

from jobkit import errors

log = logging.getLogger(__name__)

ISSUER = "jobkit-local"
AUDIENCE = "jobkit"
TENANT = "local"
SCOPE = "Jobs.ReadWrite"
KEY_FILE = "keys/local-signing-key.pem"
ALGORITHM = "RS256"
COOLDOWN_SECONDS = 300.0
FAILURE_COOLDOWN_SECONDS = 10.0
MAX_KEY_AGE_SECONDS = 24 * 3600.0
FETCH_TIMEOUT_SECONDS = 10.0

_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")


@attrs.frozen(kw_only=True)
class KeyPair:
    """The local signing key; `kid` is its RFC 7638 thumbprint, so it is stable across restarts."""

    kid: str
    private_key: rsa.RSAPrivateKey
    public_key: rsa.RSAPublicKey


def ensure_keypair(data: Path) -> KeyPair:
    """Load `data/keys/local-signing-key.pem`, creating an RSA 2048 key there on first use."""
    path = data / KEY_FILE
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the local signing key %s is readable by others (mode %o)", path, mode)
    private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise errors.ConfigurationError(f"{path} does not hold an RSA private key")
    public_key = private_key.public_key()
    return KeyPair(kid=thumbprint(public_key), private_key=private_key, public_key=public_key)


def _create(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_once(path, pem)


def write_once(path: Path, secret: bytes) -> None:
    """Create `path` (mode 0600) holding `secret`, unless another process made it first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole under a private name, then linked into place: a crash leaves no half key,
    # and if two processes start at once the first link wins and both use that one key
    # (a rename would let the second silently replace a key the first already signed with).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secret)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url without padding)."""
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_user(user: str) -> str:
    """Return `user` if it is a valid local user name, else raise `ValueError` saying why."""
    if not _USER.fullmatch(user):
        raise ValueError(
            f"bad user name {user!r}: use 1 to 64 characters among letters, digits and . _ @ -"
        )
    return user


def issue_token(data: Path, user: str, *, ttl_seconds: int = 3600 * 24, now: datetime) -> str:
    """Sign a local-mode access token for `user`, valid from `now` for `ttl_seconds`."""
    check_user(user)
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
    pair = ensure_keypair(data)
    issued = int(now.timestamp())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "tid": TENANT,
        "oid": user,
        "name": user,
        "scp": SCOPE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, pair.private_key, algorithm=ALGORITHM, headers={"kid": pair.kid})


class KeySource(Protocol):
    """Where the verifier finds the public key named by a token's `kid`."""

    async def key(self, kid: str) -> Result[rsa.RSAPublicKey, str]:
        """The key, or a `Failure` with a detail safe to show (unknown key, keys unavailable)."""
        ...

    def current(self, kid: str) -> rsa.RSAPublicKey | None:
        """The key held now for `kid`, without fetching: None if unknown or due a refresh."""
        ...


@attrs.frozen
class StaticKeySource:
    """A fixed set of keys by `kid` (local mode)."""

    keys: Mapping[str, rsa.RSAPublicKey]

    async def key(self, kid: str) -> Result[rsa.RSAPublicKey, str]:
        found = self.keys.get(kid)
        if found is None:
            return Failure("the token was signed with a key this service does not know")
        return Success(found)

    def current(self, kid: str) -> rsa.RSAPublicKey | None:
        return self.keys.get(kid)


class JwksKeySource:
    """Keys from an OpenID provider's JWKS, found through its metadata document and cached by `kid`.

    An unknown `kid` triggers a refresh, so key rotation needs no restart; refreshes are at
    least `cooldown_seconds` apart (`failure_cooldown_seconds` after a failed fetch, so a blip
    does not lock everyone out for the whole cool-down), so a flood of made-up kids costs the
    provider one request per cool-down. Concurrent refreshes coalesce behind one lock. Keys
    older than `max_age_seconds` are refreshed too, so a key the provider withdrew stops
    verifying; if that refresh fails the known keys are kept.
    """

    def __init__(
        self,
        metadata_url: str,
        http: httpx.AsyncClient,
        *,
        expected_issuer: str | None = None,
        cooldown_seconds: float = COOLDOWN_SECONDS,
        failure_cooldown_seconds: float = FAILURE_COOLDOWN_SECONDS,
        max_age_seconds: float = MAX_KEY_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata_url = metadata_url
        self._http = http
        self._expected_issuer = expected_issuer
        self._cooldown = cooldown_seconds
        self._failure_cooldown = failure_cooldown_seconds
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._jwks_uri: str | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._wait = 0.0
        self._attempts = 0
        self._problem: str | None = None

    async def key(self, kid: str) -> Result[rsa.RSAPublicKey, str]:
        stale = self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age
        if kid not in self._keys or stale:
            await self._refresh(seen=self._attempts)
        found = self._keys.get(kid)
        if found is not None:
            return Success(found)
        if not self._keys:
            return Failure(f"the signing keys could not be fetched: {self._problem}")
        return Failure("the token was signed with a key the identity provider does not publish")

    def current(self, kid: str) -> rsa.RSAPublicKey | None:
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age:
            return None
        return self._keys.get(kid)

    async def _refresh(self, *, seen: int) -> None:
        async with self._lock:
            if self._attempts != seen:
                return  # another task refreshed while this one waited: use its result
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._wait:
                return
            self._attempted_at = now
            self._attempts += 1
            match await self._fetch():
                case Success(fetched):
                    if set(fetched) != set(self._keys):
                        log.info("signing keys refreshed: %d keys", len(fetched))
                    self._keys = fetched
                    self._fetched_at = now
                    self._problem = None
                    self._wait = self._cooldown
                case Failure(problem):
                    log.warning(
                        "could not fetch signing keys from %s: %s", self.metadata_url, problem
                    )
                    self._problem = problem
                    self._jwks_uri = None  # re-read the metadata next time: it may have moved
                    self._wait = self._failure_cooldown

    async def _fetch(self) -> Result[dict[str, rsa.RSAPublicKey], str]:
        try:
            if self._jwks_uri is None:
                metadata = await self._get_json(self.metadata_url)
                jwks_uri = metadata.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    return Failure("the OpenID metadata has no jwks_uri")
                issuer = metadata.get("issuer")
                if self._expected_issuer is not None and issuer != self._expected_issuer:
                    log.warning(
                        "OpenID metadata at %s names issuer %r, expected %r",
                        self.metadata_url,
                        issuer,
                        self._expected_issuer,
                    )
                self._jwks_uri = jwks_uri
            jwks = await self._get_json(self._jwks_uri)
        except httpx.HTTPStatusError as exc:
            return Failure(f"the identity provider answered HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return Failure(f"the identity provider could not be reached ({type(exc).__name__})")
        except ValueError:
            return Failure("the identity provider sent a document that is not a JSON object")
        found = _rsa_keys(jwks.get("keys"))
        if not found:
            return Failure("the JWKS holds no usable RSA signing key")
        return Success(found)

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._http.get(url, timeout=FETCH_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document


def _rsa_keys(entries: object) -> dict[str, rsa.RSAPublicKey]:
    found: dict[str, rsa.RSAPublicKey] = {}
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("kid"), str)):
            continue
        if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            public = jwt.PyJWK(entry, algorithm=ALGORITHM).key
        except jwt.PyJWTError:
            continue  # one malformed key must not hide the others
        if isinstance(public, rsa.RSAPublicKey):
            found[entry["kid"]] = public
    return found
