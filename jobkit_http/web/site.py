"""The web page's server side: pages rendered once from Jinja2 templates, their policy, the
configuration they read (how to sign in), and the local sign-in exchange.

Each page is a shell: the same bytes for every user, rendered when the app is made. The
page's scripts fill it in from the JSON API with the user's bearer token, and follow
changes on the event streams; so a page can be cached by nobody but still costs the
server nothing to serve. The API's OpenAPI document leaves these routes out: they are the
page, not the API (they live in their own route table, `jobkit_http.web.ROUTES`).
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobkit import instants
from jobkit_http import keys
from jobkit_http.api import job_id_of
from jobkit_http.problems import Problem
from jobkit_http.settings import Settings
from jobkit_http.web import signin
from jobkit_http.web.assets import Assets

PAGES: Final = ("jobs", "job", "new", "signin", "redirect")
HTML: Final = "text/html; charset=utf-8"
ENTRA_AUTHORITY: Final = "https://login.microsoftonline.com/{tenant}"
MAX_CODE: Final = 512
STORAGE_ORIGIN: Final = "https://storage.googleapis.com"  # where signed upload URLs point


def entra_config(settings: Settings) -> dict[str, Any] | None:
    """What MSAL needs in the page (authorization code with PKCE, against our tenant), or
    None when the page has no app registration (`JOBKIT_WEB_CLIENT_ID`)."""
    if settings.auth != "entra" or not settings.web_client_id:
        return None
    audience = (settings.entra_audience or "").rstrip("/")
    scope = settings.web_api_scope or f"{audience}/{settings.entra_scope or 'Jobs.ReadWrite'}"
    return {
        "clientId": settings.web_client_id,
        "authority": settings.web_authority
        or ENTRA_AUTHORITY.format(tenant=settings.entra_tenant_id),
        "redirectUri": settings.web_redirect_uri,  # None: the page's origin + /signin/redirect
        "scopes": [scope],
    }


def page_config(settings: Settings) -> dict[str, Any]:
    """The page's configuration, embedded in each page as a JSON data block."""
    return {
        "auth": settings.auth,
        "entra": entra_config(settings),
        "directUploadAbove": settings.direct_upload_above,
    }


def policy(settings: Settings, *, framed_by_self: bool = False) -> str:
    """The page's Content-Security-Policy: its own scripts and styles only (no inline
    script, no eval), API calls to itself and, with Entra ID, to the authority; on GCP,
    direct uploads to Cloud Storage."""
    entra = entra_config(settings)
    authority = ""
    if entra is not None:
        parts = urlsplit(entra["authority"])
        authority = f" {parts.scheme}://{parts.netloc}"
    uploads = f" {STORAGE_ORIGIN}" if settings.backend == "gcp" else ""
    ancestors = "'self'" if framed_by_self else "'none'"
    frames = authority or " 'none'"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        f" connect-src 'self'{authority}{uploads}; frame-src{frames};"
        f" form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )


class Site:
    """The rendered pages and what they need, made once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.assets = Assets()
        templates = jinja2.Environment(
            loader=jinja2.PackageLoader("jobkit_http.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        config = page_config(settings)
        self.pages = {
            name: templates.get_template(f"{name}.html")
            .render(asset=self.assets.url, config=config, entra=config["entra"] is not None)
            .encode()
            for name in PAGES
        }
        self.gzipped = {name: gzip.compress(page, 9, mtime=0) for name, page in self.pages.items()}
        # Pages: their policy, no framing (also for browsers before frame-ancestors), and
        # no referrer (job ids in URLs stay here).
        self.headers = {
            "Content-Security-Policy": policy(settings),
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }
        # The redirect bridge is loaded in MSAL's hidden frame, by our own page.
        self.bridge_headers = {
            **self.headers,
            "Content-Security-Policy": policy(settings, framed_by_self=True),
            "X-Frame-Options": "SAMEORIGIN",
        }
        self.codes = signin.Codes(settings.data) if settings.auth == "local" else None

    def page(self, name: str, request: Request) -> Response:
        headers = self.bridge_headers if name == "redirect" else self.headers
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(self.gzipped[name], headers=headers, media_type=HTML)
        return Response(self.pages[name], headers=headers, media_type=HTML)


def site(request: Request) -> Site:
    found: Site = request.app.state.site
    return found


async def jobs_page(request: Request) -> Response:
    return site(request).page("jobs", request)


async def job_page(request: Request) -> Response:
    job_id_of(request)  # not a job id: 404 now, rather than a page that cannot load
    return site(request).page("job", request)


async def new_page(request: Request) -> Response:
    return site(request).page("new", request)


async def signin_page(request: Request) -> Response:
    return site(request).page("signin", request)


async def redirect_page(request: Request) -> Response:
    return site(request).page("redirect", request)


async def static(request: Request) -> Response:
    return site(request).assets.response(request)


async def local_signin(request: Request) -> Response:
    """`POST /signin/local` `{"code": ...}`: a local token for the code's user, once."""
    here = site(request)
    if here.codes is None:
        raise Problem(404, "not-found", "local sign-in is off: this service uses Entra ID")
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE:
        raise Problem(400, "bad-request", 'send {"code": "..."}, the code of a sign-in link')
    now = request.app.state.service.clock()
    match here.codes.take(code, now):
        case Success(user):
            ttl = here.settings.web_session_seconds
            token = keys.issue_token(here.settings.data, user, ttl_seconds=ttl, now=now)
            expires = instants.format(now + timedelta(seconds=ttl))
            return JSONResponse(
                {"accessToken": token, "expiresAt": expires, "user": user},
                headers={"Cache-Control": "no-store"},
            )
        case Failure(reason):
            raise Problem(401, "sign-in-refused", reason)
    raise AssertionError("unreachable")
