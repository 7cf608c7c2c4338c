"""The web page's server side without a browser: one-time sign-in codes, the configuration
and policy each page carries (local and Entra ID), its static files, and its settings."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobkit import errors
from jobkit_http import settings
from jobkit_http.web import signin
from jobkit_http.web import site as site_module
from tests.jobkit_http.server import RunningServer, problem, serve

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TENANT = "11111111-2222-3333-4444-555555555555"
ENTRA = {
    "JOBKIT_AUTH": "entra",
    "JOBKIT_ENTRA_TENANT_ID": TENANT,
    "JOBKIT_ENTRA_AUDIENCE": "api://jobkit-api",
    "JOBKIT_WEB_CLIENT_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
}


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="jobkit-config">(.*?)</script>', html)
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


# -- sign-in codes -------------------------------------------------------------------------


def test_a_code_signs_its_user_in_once(tmp_path: Path) -> None:
    code = signin.mint(tmp_path, "alice", now=NOW, ttl_seconds=600)
    codes = signin.Codes(tmp_path)
    assert codes.take(code, NOW + timedelta(seconds=599)).unwrap() == "alice"
    assert "used already" in codes.take(code, NOW).failure()
    assert len(code) < 100  # short enough to read in a terminal


def test_a_code_expires(tmp_path: Path) -> None:
    code = signin.mint(tmp_path, "alice", now=NOW, ttl_seconds=600)
    assert "expired" in signin.Codes(tmp_path).take(code, NOW + timedelta(seconds=600)).failure()


def test_a_code_from_elsewhere_or_altered_is_refused(tmp_path: Path) -> None:
    theirs = signin.mint(tmp_path / "other", "alice", now=NOW, ttl_seconds=600)
    codes = signin.Codes(tmp_path / "mine")
    assert "another service" in codes.take(theirs, NOW).failure()
    ours = signin.mint(tmp_path / "mine", "alice", now=NOW, ttl_seconds=600)
    version, user, expires, nonce, mac = ours.split(".")
    promoted = ".".join([version, signin._b64(b"admin"), expires, nonce, mac])
    assert "another service" in codes.take(promoted, NOW).failure()
    later = ".".join([version, user, str(int(expires) + 3600), nonce, mac])
    assert "another service" in codes.take(later, NOW).failure()
    for garbage in ("", "x", "2.a.b.c.d", "1.a.b.c"):
        assert "not a sign-in code" in codes.take(garbage, NOW).failure()
    assert codes.take(ours, NOW).unwrap() == "alice"


def test_a_code_names_a_valid_user(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad user name"):
        signin.mint(tmp_path, "no spaces", now=NOW, ttl_seconds=60)


def test_the_exchange_refuses_what_is_not_a_code(server: RunningServer) -> None:
    url = server.base_url + "/signin/local"
    assert problem(httpx.post(url, content=b"nope"), 400)
    assert problem(httpx.post(url, json={"code": 7}), 400)
    assert problem(httpx.post(url, json={"code": "1.a.b.c.d"}), 401)
    code = signin.mint(server.data, "carol", now=datetime.now(UTC), ttl_seconds=60)
    answer = httpx.post(url, json={"code": code})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    session = answer.json()
    assert session["user"] == "carol"
    lasts = datetime.fromisoformat(session["expiresAt"]) - datetime.now(UTC)
    assert timedelta(hours=7, minutes=59) < lasts <= timedelta(hours=8)
    listed = httpx.get(
        server.base_url + "/api/v1/jobs",
        headers={"Authorization": f"Bearer {session['accessToken']}"},
    )
    assert listed.status_code == 200


# -- what each page carries ----------------------------------------------------------------


def test_local_pages_carry_no_entra_and_a_strict_policy(server: RunningServer) -> None:
    page = httpx.get(server.base_url + "/")
    assert page.headers["content-encoding"] == "gzip"
    assert page_config(page.text) == {
        "auth": "local",
        "entra": None,
        "directUploadAbove": 30 * 1024 * 1024,
    }
    assert "msal" not in page.text
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self';" in policy
    assert "frame-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"


def test_with_entra_the_page_gets_msals_configuration_and_may_reach_the_tenant(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, ENTRA) as running:
        page = httpx.get(running.base_url + "/")
        bridge = httpx.get(running.base_url + "/signin/redirect")
        assert httpx.post(running.base_url + "/signin/local", json={"code": "x"}).status_code == 404
    assert page_config(page.text)["entra"] == {
        "clientId": ENTRA["JOBKIT_WEB_CLIENT_ID"],
        "authority": f"https://login.microsoftonline.com/{TENANT}",
        "redirectUri": None,  # the page's own origin + /signin/redirect
        "scopes": ["api://jobkit-api/Jobs.ReadWrite"],
    }
    assert "vendor/msal-browser.min.js" in page.text
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self' https://login.microsoftonline.com;" in policy
    assert "frame-src https://login.microsoftonline.com;" in policy
    assert "script-src 'self';" in policy
    # MSAL's hidden frame loads the bridge from our own page: framing by ourselves only.
    assert "frame-ancestors 'self'" in bridge.headers["content-security-policy"]
    assert bridge.headers["x-frame-options"] == "SAMEORIGIN"
    assert "vendor/msal-redirect-bridge.min.js" in bridge.text


def test_entra_settings_for_the_page_can_be_given_whole(tmp_path: Path) -> None:
    environ = {
        **ENTRA,
        "JOBKIT_WEB_AUTHORITY": "https://login.microsoftonline.us/" + TENANT,
        "JOBKIT_WEB_API_SCOPE": "api://other/Jobs.ReadWrite",
        "JOBKIT_WEB_REDIRECT_URI": "https://jobs.example.org/signin/redirect",
    }
    with serve(tmp_path, environ) as running:
        page = httpx.get(running.base_url + "/new")
    assert page_config(page.text)["entra"] == {
        "clientId": ENTRA["JOBKIT_WEB_CLIENT_ID"],
        "authority": "https://login.microsoftonline.us/" + TENANT,
        "redirectUri": "https://jobs.example.org/signin/redirect",
        "scopes": ["api://other/Jobs.ReadWrite"],
    }
    assert "https://login.microsoftonline.us;" in page.headers["content-security-policy"]


def test_with_entra_but_no_app_registration_the_page_says_what_is_missing(
    tmp_path: Path,
) -> None:
    environ = {k: v for k, v in ENTRA.items() if k != "JOBKIT_WEB_CLIENT_ID"}
    with serve(tmp_path, environ) as running:
        page = httpx.get(running.base_url + "/signin")
    assert page_config(page.text)["entra"] is None
    assert "JOBKIT_WEB_CLIENT_ID" in page.text


def test_a_job_page_needs_a_job_id(server: RunningServer) -> None:
    assert problem(httpx.get(server.base_url + "/jobs/not-an-id"), 404)


def test_the_page_can_be_turned_off(tmp_path: Path) -> None:
    with serve(tmp_path, {"JOBKIT_WEB": "false"}) as running:
        assert problem(httpx.get(running.base_url + "/"), 404)
        assert problem(httpx.get(running.base_url + "/static/app.css"), 404)
        assert httpx.get(running.base_url + "/healthz").status_code == 200


# -- static files --------------------------------------------------------------------------


def test_static_files_are_cached_for_good_by_their_versioned_url(server: RunningServer) -> None:
    page = httpx.get(server.base_url + "/").text
    href = re.search(r'href="(/static/app\.css\?v=\w+)"', page)
    assert href is not None
    first = httpx.get(server.base_url + href.group(1), headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["content-type"] == "text/css; charset=utf-8"
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert ":root" in first.text
    again = httpx.get(
        server.base_url + href.group(1), headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    stale = httpx.get(server.base_url + "/static/app.css?v=old")
    assert stale.headers["cache-control"] == "no-cache"
    plain = httpx.get(server.base_url + "/static/app.css", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert problem(httpx.get(server.base_url + "/static/nothing.js"), 404)
    assert problem(httpx.get(server.base_url + "/static/../settings.py"), 404)


# -- settings ------------------------------------------------------------------------------


def test_the_web_settings_have_their_defaults() -> None:
    read = settings.from_env({})
    assert read.web
    assert read.events_heartbeat_seconds == 15
    assert read.events_max_per_user == 8
    assert read.changes_poll_seconds == 1
    assert settings.from_env({"JOBKIT_CHANGES_POLL_SECONDS": "0"}).changes_poll_seconds is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBKIT_WEB", "maybe"),
        ("JOBKIT_EVENTS_HEARTBEAT_SECONDS", "0"),
        ("JOBKIT_EVENTS_MAX_PER_USER", "0"),
        ("JOBKIT_CHANGES_POLL_SECONDS", "-1"),
        ("JOBKIT_SIGNIN_SECONDS", "0"),
        ("JOBKIT_WEB_SESSION_SECONDS", "0"),
    ],
)
def test_a_bad_web_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=name):
        settings.from_env({name: value})


def test_on_gcp_the_page_may_upload_to_cloud_storage() -> None:
    local = site_module.policy(settings.Settings())
    gcp = site_module.policy(settings.Settings(backend="gcp", gcs_bucket="b"))
    assert "storage.googleapis.com" not in local
    assert "connect-src 'self' https://storage.googleapis.com;" in gcp
