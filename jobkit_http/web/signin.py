"""Local sign-in links: a one-time code, printed by `jobkit serve` (or `jobkit signin`), that
the page exchanges for a local bearer token, so nobody pastes tokens.

A code names its user and its expiry and carries a random nonce, all signed with a key
derived from the data folder's local signing key (HMAC-SHA256): any process with the
folder can mint one, and only this service can check it, with no shared state. The
server remembers the nonces it has taken until they expire, so a code signs in once.
Codes travel in the link's fragment (`/signin#code=...`), which browsers never send to
servers, so they stay out of access logs and proxies; the page posts the code here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from returns.result import Failure, Result, Success

from jobkit_http import keys

VERSION: Final = "1"
_MAC_BYTES: Final = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(data: Path) -> bytes:
    private = keys.ensure_keypair(data).private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return hashlib.sha256(b"jobkit local sign-in codes\x00" + private).digest()


def _mac(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES])


def mint(data: Path, user: str, *, now: datetime, ttl_seconds: float) -> str:
    """A code signing `user` in once, within `ttl_seconds` of `now`."""
    keys.check_user(user)
    expires = int(now.timestamp() + ttl_seconds)
    signed = f"{VERSION}.{_b64(user.encode())}.{expires}.{secrets.token_urlsafe(12)}"
    return f"{signed}.{_mac(_key(data), signed)}"


def link(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/signin#code={code}"


class Codes:
    """Checks codes for one server, each once."""

    def __init__(self, data: Path) -> None:
        self._key = _key(data)
        self._taken: dict[str, int] = {}  # nonce -> expiry

    def take(self, code: str, now: datetime) -> Result[str, str]:
        """The user `code` signs in, once; or why not (safe to show)."""
        parts = code.split(".")
        if len(parts) != 5 or parts[0] != VERSION:
            return Failure("this is not a sign-in code of this service")
        signed, mac = ".".join(parts[:4]), parts[4]
        if not hmac.compare_digest(_mac(self._key, signed), mac):
            return Failure("this sign-in code is not valid here (it was made for another service)")
        _, user_part, expires_part, nonce = parts[:4]
        stamp = int(now.timestamp())
        expires = int(expires_part)
        if expires <= stamp:
            return Failure("this sign-in link has expired; run `jobkit signin` for a new one")
        self._taken = {n: e for n, e in self._taken.items() if e > stamp}
        if nonce in self._taken:
            return Failure("this sign-in link was used already; run `jobkit signin` for a new one")
        self._taken[nonce] = expires
        return Success(_unb64(user_part).decode())
