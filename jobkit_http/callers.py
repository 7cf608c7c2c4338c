"""Who may call the internal endpoints (`/internal/dispatch`, `/internal/sweep`): Cloud Tasks
and Cloud Scheduler, by the OIDC token they attach for one service account, or, where no
token can be had (the Cloud Tasks emulator), by a shared secret header. Never a user.

A Google-signed ID token passes when its key is one Google publishes (found through its
OpenID metadata, cached by `kid`: `keys.JwksKeySource`), its signature is valid, its issuer
is Google's, its audience is the configured one, it is within `exp` (give or take the
leeway), and it names the configured service account in `email`, with `email_verified`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final

import httpx
import jwt
from returns.result import Failure, Result, Success

from jobkit_http import keys
from jobkit_http.auth import REALM, AuthFailure

log = logging.getLogger("jobkit.http.callers")

GOOGLE_METADATA: Final = "https://accounts.google.com/.well-known/openid-configuration"
GOOGLE_ISSUERS: Final = frozenset({"https://accounts.google.com", "accounts.google.com"})
LEEWAY_SECONDS: Final = 60.0
SECRET_HEADER: Final = "x-jobkit-dispatch-secret"


class Callers:
    """Checks a request's headers: the OIDC token of `service_account` for `audience`, or
    `secret` in `X-Jobkit-Dispatch-Secret`. Either may be None (not accepted); not both."""

    def __init__(
        self,
        *,
        service_account: str | None,
        audience: str,
        secret: str | None,
        key_source: keys.KeySource | None,
        issuers: frozenset[str] = GOOGLE_ISSUERS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not (service_account or secret):
            raise ValueError("the internal endpoints need a service account or a secret")
        if service_account and key_source is None:
            raise ValueError("checking OIDC tokens needs a key source")
        self.service_account = service_account
        self.audience = audience
        self._secret = secret.encode() if secret else None
        self._keys = key_source
        self._issuers = issuers
        self._clock = clock

    async def check(self, headers: Mapping[str, str]) -> Result[str, AuthFailure]:
        """Who called (the service account, or `secret`), or why the call is refused."""
        given = headers.get(SECRET_HEADER)
        if given is not None:
            if self._secret is not None and hmac.compare_digest(given.encode(), self._secret):
                return Success("secret")
            return Failure(_refused("the dispatch secret is wrong"))
        authorization = headers.get("authorization")
        if self.service_account is None:
            return Failure(_refused("this endpoint takes the dispatch secret only"))
        if not authorization or not authorization.lower().startswith("bearer "):
            return Failure(_refused("this endpoint needs Cloud Tasks' OIDC token"))
        match await self._verify(authorization[7:].strip()):
            case Success(email):
                return Success(email)
            case Failure(detail):
                return Failure(_refused(detail))
        raise AssertionError("unreachable")

    async def _verify(self, token: str) -> Result[str, str]:
        assert self._keys is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Failure("the token is malformed (not a signed JWT)")
        kid = header.get("kid")
        if header.get("alg") != keys.ALGORITHM or not isinstance(kid, str):
            return Failure("the token is not an RS256 token with a key id")
        match await self._keys.key(kid):
            case Failure(detail):
                return Failure(detail)
            case Success(public_key):
                pass
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[keys.ALGORITHM],
                audience=self.audience,
                options={"require": ["iss", "aud", "exp", "iat", "email"], "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            return Failure("the token is meant for another audience")
        except jwt.PyJWTError as exc:
            return Failure(f"the token is not valid ({type(exc).__name__})")
        if claims.get("iss") not in self._issuers:
            return Failure("the token was not issued by Google")
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires <= self._clock().timestamp() - (
            LEEWAY_SECONDS
        ):
            return Failure("the token has expired")
        if claims.get("email") != self.service_account or claims.get("email_verified") is not True:
            return Failure("the token is not the dispatch service account's")
        return Success(self.service_account or "")


def _refused(detail: str) -> AuthFailure:
    return AuthFailure(
        status=401,
        title="Not a dispatcher",
        detail=detail,
        www_authenticate=f'Bearer realm="{REALM}-internal"',
    )


def callers(
    *,
    service_account: str | None,
    audience: str,
    secret: str | None,
    metadata_url: str | None,
    http: httpx.AsyncClient,
) -> Callers:
    """The checker the settings describe; Google's keys when a service account is named."""
    key_source = (
        keys.JwksKeySource(
            metadata_url or GOOGLE_METADATA, http, expected_issuer="https://accounts.google.com"
        )
        if service_account
        else None
    )
    return Callers(
        service_account=service_account, audience=audience, secret=secret, key_source=key_source
    )
