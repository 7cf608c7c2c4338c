"""Signed upload URLs: what a signer hands out (`Signed`), and the embedded default's own,
an HMAC over the upload's key, size cap and expiry with a key kept in the data folder.

Cloud Storage's signer (V4 signed URLs) is `jobkit_gcp.signed_urls`; both satisfy
`UploadSigner`, which `jobkit_http.direct` calls without knowing which backend it has.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import stat
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

import attrs

from jobkit import errors
from jobkit_http import keys

log = logging.getLogger(__name__)

KEY_FILE = "keys/upload-signing-key"
KEY_BYTES = 32


@attrs.frozen(kw_only=True)
class Signed:
    """How to upload: send `method` to `url` with exactly `headers` and the file as the body
    (`resumable`: a Cloud Storage resumable session is started so, see the how-to)."""

    method: str
    url: str
    headers: dict[str, str]
    resumable: bool


class UploadSigner(Protocol):
    """Signs one upload of at most `max_bytes` bytes of `content_type` to blob `key`, valid
    until `expires_at`. `route` is this service's own URL for the upload (the local signer
    signs a URL to it; a bucket's signer ignores it). May do I/O (IAM's signBlob)."""

    async def sign(
        self,
        key: str,
        *,
        route: str,
        content_type: str,
        max_bytes: int,
        expires_at: datetime,
        resumable: bool,
    ) -> Signed: ...


def load_key(data: Path) -> bytes:
    """`data/keys/upload-signing-key`: 32 random bytes, made on first use (mode 0600)."""
    path = data / KEY_FILE
    if not path.exists():
        keys.write_once(path, secrets.token_bytes(KEY_BYTES))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:  # as for the local token key: said, not refused
        log.warning("the upload signing key %s is readable by others (mode %o)", path, mode)
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise errors.ConfigurationError(f"{path} holds {len(key)} bytes, not {KEY_BYTES}")
    return key


def _message(method: str, key: str, content_type: str, max_bytes: int, expires: int) -> bytes:
    return f"jobkit-upload-v1\n{method}\n{key}\n{content_type}\n{max_bytes}\n{expires}".encode()


class LocalSigner:
    """`PUT {route}?expires=…&max=…&signature=…`: the service checks the signature itself."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, key: str, content_type: str, max_bytes: int, expires: int) -> str:
        message = _message("PUT", key, content_type, max_bytes, expires)
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, key: str, content_type: str, max_bytes: int, expires: int, given: str) -> bool:
        expected = self.signature(key, content_type, max_bytes, expires)
        return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))

    async def sign(
        self,
        key: str,
        *,
        route: str,
        content_type: str,
        max_bytes: int,
        expires_at: datetime,
        resumable: bool,
    ) -> Signed:
        expires = int(expires_at.timestamp())
        query = urlencode(
            {
                "expires": expires,
                "max": max_bytes,
                "signature": self.signature(key, content_type, max_bytes, expires),
            }
        )
        return Signed(
            method="PUT",
            url=f"{route}?{query}",
            headers={"Content-Type": content_type},
            resumable=False,
        )


def local_signer(data: Path) -> LocalSigner:
    return LocalSigner(load_key(data))
