"""Bearer-token authentication: one RS256 verifier and its key sources, for Entra ID and local."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from returns.result import Failure, Result, Success

from jobkit import errors
from jobkit_http import keys
from jobkit_http.settings import Settings

log = logging.getLogger(__name__)

REALM = "jobkit"
LEEWAY_SECONDS = 60.0
CACHE_SIZE = 10_000
CACHE_SECONDS = 300.0

# RFC 6750 allows only these characters inside error_description.
_UNSAFE_IN_HEADER = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


@attrs.frozen(kw_only=True)
class Principal:
    """Who made the request: `user_id` is `"{tid}:{oid}"`, unique across tenants."""

    user_id: str
    tenant_id: str
    object_id: str
    name: str | None
    scopes: frozenset[str]
    roles: frozenset[str]


@attrs.frozen(kw_only=True)
class AuthFailure:
    """Why a request is refused; `detail` never contains the token, so it is safe to show."""

    status: int
    title: str
    detail: str
    www_authenticate: str


def _missing(detail: str) -> AuthFailure:
    # RFC 6750 section 3.1: no error code when the client sent no usable credentials.
    return AuthFailure(
        status=401,
        title="Authentication required",
        detail=detail,
        www_authenticate=f'Bearer realm="{REALM}"',
    )


def _invalid(detail: str) -> AuthFailure:
    description = _UNSAFE_IN_HEADER.sub("", detail)
    return AuthFailure(
        status=401,
        title="Invalid token",
        detail=detail,
        www_authenticate=(
            f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
        ),
    )


def _forbidden(detail: str, scope: str | None) -> AuthFailure:
    header = f'Bearer realm="{REALM}", error="insufficient_scope"'
    if scope:
        header += f', scope="{_UNSAFE_IN_HEADER.sub("", scope)}"'
    description = _UNSAFE_IN_HEADER.sub("", detail)
    return AuthFailure(
        status=403,
        title="Insufficient scope",
        detail=detail,
        www_authenticate=f'{header}, error_description="{description}"',
    )


class Authenticator:
    """Verifies `Authorization: Bearer` RS256 tokens; every bad token is a `Failure`, never raised.

    A token passes when its key is known by `kid`, its signature is valid, its issuer is one of
    `issuers`, its audience is `audience`, it is within `exp`/`nbf` (give or take `leeway`), it
    carries `iat`, `tid` and `oid`, its `tid` is `tenant`, and it grants `scope` (in `scp`) or
    `role` (in `roles`).

    The user id is built from `tid` and `oid`, so `tid` is checked on its own and not trusted
    because the issuer names the same tenant: a token whose `tid` differs from the tenant its
    issuer speaks for is refused, whoever signed it.
    """

    def __init__(
        self,
        *,
        issuers: Collection[str],
        audience: str,
        key_source: keys.KeySource,
        scope: str | None,
        role: str | None = None,
        tenant: str,
        leeway_seconds: float = LEEWAY_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not issuers or not audience:
            raise errors.ConfigurationError("an authenticator needs an issuer and an audience")
        if not (scope or role):
            raise errors.ConfigurationError("an authenticator needs a scope or a role to require")
        self.issuers = frozenset(issuers)
        self.audience = audience
        self.key_source = key_source
        self.scope = scope
        self.role = role
        self.tenant = tenant
        self.leeway = leeway_seconds
        self._clock = clock
        # Verifying an RS256 token costs more than the rest of a status poll; a client polls
        # with one token, so a verified token is remembered (bounded in count and in time:
        # never past its `exp`, and no longer than `CACHE_SECONDS`, so a withdrawn key stops
        # working soon after).
        self._verified: dict[str, tuple[Principal, float, str, rsa.RSAPublicKey]] = {}
        self._full_warned = float("-inf")  # when a full cache was last logged

    async def authenticate(self, authorization: str | None) -> Result[Principal, AuthFailure]:
        match _bearer(authorization):
            case Failure(failure):
                return Failure(failure)
            case Success(token):
                now = self._clock().timestamp()
                known = self._verified.get(token)
                if known is not None:
                    principal, until, kid, key = known
                    if now < until and self.key_source.current(kid) is key:
                        log.debug("token verified before: served from the cache")
                        return Success(principal)
                    del self._verified[token]
                match await self._verify(token):
                    case Success((claims, kid, key)):
                        outcome = self._principal(claims)
                        if isinstance(outcome, Success):
                            self._remember(token, outcome.unwrap(), claims, now, kid, key)
                        return outcome
                    case Failure(detail):
                        return Failure(_invalid(detail))  # logged with the request's context
        raise AssertionError("unreachable")

    def _remember(
        self,
        token: str,
        principal: Principal,
        claims: dict[str, Any],
        now: float,
        kid: str,
        key: rsa.RSAPublicKey,
    ) -> None:
        """Remember a verified token until its `exp` (at most `CACHE_SECONDS`), for as long as
        the key that verified it is still the one held for its `kid`."""
        if len(self._verified) >= CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
            if now >= self._full_warned + CACHE_SECONDS:  # at most once per cache lifetime
                self._full_warned = now
                log.warning(
                    "the verified-token cache is at capacity (%d tokens): older ones are"
                    " verified again",
                    CACHE_SIZE,
                    extra={"cache": "verified-tokens", "capacity": CACHE_SIZE},
                )
        until = min(float(claims["exp"]) + self.leeway, now + CACHE_SECONDS)
        self._verified[token] = (principal, until, kid, key)

    async def _verify(
        self, token: str
    ) -> Result[tuple[dict[str, Any], str, rsa.RSAPublicKey], str]:
        """The token's claims, with the `kid` and key that verified them."""
        match _kid(token):
            case Failure(detail):
                return Failure(detail)
            case Success(kid):
                match await self.key_source.key(kid):
                    case Success(public_key):
                        return self._claims(token, public_key).map(
                            lambda claims: (claims, kid, public_key)
                        )
                    case Failure(detail):
                        return Failure(detail)
        raise AssertionError("unreachable")

    def _claims(self, token: str, public_key: rsa.RSAPublicKey) -> Result[dict[str, Any], str]:
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[keys.ALGORITHM],
                audience=self.audience,
                issuer=self.issuers,
                options={
                    "require": ["iss", "aud", "exp", "iat"],
                    # Times are checked below against the injected clock, not PyJWT's.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            return Failure(f"the token has no {exc.claim!r} claim")
        except jwt.InvalidSignatureError:
            return Failure("the token's signature is not valid")
        except jwt.InvalidIssuerError:
            return Failure("the token was issued by an issuer this service does not trust")
        except jwt.InvalidAudienceError:
            return Failure("the token is meant for another audience")
        except jwt.InvalidAlgorithmError:
            return Failure("the token's signing algorithm is not supported (only RS256 is)")
        except jwt.InvalidKeyError:
            return Failure("the signing key is not usable (too short or malformed)")
        except jwt.PyJWTError:
            return Failure("the token is malformed")
        return _check_times(claims, self._clock().timestamp(), self.leeway)

    def _principal(self, claims: dict[str, Any]) -> Result[Principal, AuthFailure]:
        tenant, oid = claims.get("tid"), claims.get("oid")
        if not (isinstance(tenant, str) and tenant):
            return Failure(_invalid("the token has no 'tid' (tenant id) claim"))
        if tenant != self.tenant:
            return Failure(_invalid("the token's 'tid' (tenant id) is not this service's tenant"))
        if not (isinstance(oid, str) and oid):
            return Failure(_invalid("the token has no 'oid' (object id) claim"))
        scp = claims.get("scp")
        scopes = frozenset(scp.split()) if isinstance(scp, str) else frozenset[str]()
        listed = claims.get("roles")
        roles = frozenset(
            role for role in (listed if isinstance(listed, list) else []) if isinstance(role, str)
        )
        if not ((self.scope and self.scope in scopes) or (self.role and self.role in roles)):
            return Failure(_forbidden(self._needs(), self.scope))
        names = [claims.get("name"), claims.get("preferred_username")]
        name = next((n for n in names if isinstance(n, str) and n), None)
        return Success(
            Principal(
                user_id=f"{tenant}:{oid}",
                tenant_id=tenant,
                object_id=oid,
                name=name,
                scopes=scopes,
                roles=roles,
            )
        )

    def _needs(self) -> str:
        wanted = [f"the scope {self.scope!r}"] if self.scope else []
        wanted += [f"the app role {self.role!r}"] if self.role else []
        return "the token does not grant " + " or ".join(wanted)


def _bearer(authorization: str | None) -> Result[str, AuthFailure]:
    if authorization is None or not authorization.strip():
        return Failure(_missing("this request needs an 'Authorization: Bearer <token>' header"))
    scheme, *rest = authorization.split(None, 1)
    if scheme.lower() != "bearer":
        return Failure(_missing("the Authorization header must use the Bearer scheme"))
    if not rest:
        return Failure(_invalid("the Authorization header has no token after 'Bearer'"))
    return Success(rest[0].strip())


def _kid(token: str) -> Result[str, str]:
    """The token's `kid`, once its header says RS256; nothing here is trusted yet."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return Failure("the token is malformed (not a signed JWT)")
    if header.get("alg") != keys.ALGORITHM:
        return Failure("the token's signing algorithm is not supported (only RS256 is)")
    kid = header.get("kid")
    if not (isinstance(kid, str) and kid):
        return Failure("the token's header has no key id ('kid')")
    return Success(kid)


def _check_times(claims: dict[str, Any], now: float, leeway: float) -> Result[dict[str, Any], str]:
    times: dict[str, float] = {}
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            return Failure(f"the token's {name!r} claim is not a number")
        times[name] = value
    if times["exp"] <= now - leeway:
        return Failure("the token has expired")
    if times.get("nbf", now) > now + leeway:
        return Failure("the token is not valid yet ('nbf' is in the future)")
    if times["iat"] > now + leeway:
        return Failure("the token is not valid yet ('iat' is in the future)")
    return Success(claims)


def entra_issuers(tenant: str, *, allow_v1: bool) -> tuple[str, ...]:
    """The issuers of a tenant's access tokens: v2.0, and v1.0 only when allowed."""
    v2 = f"https://login.microsoftonline.com/{tenant}/v2.0"
    return (v2, f"https://sts.windows.net/{tenant}/") if allow_v1 else (v2,)


def entra_authenticator(settings: Settings, http: httpx.AsyncClient) -> Authenticator:
    """The Entra ID verifier: tenant issuers, the API's audience, keys from the tenant's JWKS."""
    tenant, audience = settings.entra_tenant_id, settings.entra_audience
    if not (tenant and audience):
        raise errors.ConfigurationError(
            "JOBKIT_AUTH=entra needs JOBKIT_ENTRA_TENANT_ID and JOBKIT_ENTRA_AUDIENCE"
        )
    issuers = entra_issuers(tenant, allow_v1=settings.entra_allow_v1)
    metadata_url = (
        settings.entra_metadata_url
        or f"https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
    )
    return Authenticator(
        issuers=issuers,
        audience=audience,
        key_source=keys.JwksKeySource(metadata_url, http, expected_issuer=issuers[0]),
        scope=settings.entra_scope,
        role=settings.entra_role,
        tenant=tenant,
    )


def local_authenticator(data: Path) -> Authenticator:
    """The local-mode verifier: the data folder's key pair (created on first use)."""
    pair = keys.ensure_keypair(data)
    return Authenticator(
        issuers=[keys.ISSUER],
        audience=keys.AUDIENCE,
        key_source=keys.StaticKeySource({pair.kid: pair.public_key}),
        scope=keys.SCOPE,
        tenant=keys.TENANT,
    )
