"""CORS: preflights and headers for the listed origins only, and a real browser using them.

The browser test drives Debian's headless Chromium with Selenium: a page served from one
loopback origin submits and polls a job on the service at another; the same page served
from an origin not on the list is refused. Chromium and its driver are part of the test
set-up (`.ci/run` installs them): without them the test fails, it does not skip.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobkit_http import api, cors
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import SAMPLE_PDF, RunningServer, serve
from tests.loopback import Loopback, Quiet

P = api.PREFIX
PAGE = Path(__file__).with_name("browser") / "page.html"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ALLOWED = "http://127.0.0.1:{port}"


class _Files(Quiet):
    """The front end's own origin: the page, and a PDF for it to upload."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/":
            body, kind = PAGE.read_bytes(), "text/html; charset=utf-8"
        elif path == "/sample.pdf":
            body, kind = SAMPLE_PDF, "application/pdf"
        else:
            self.send_error(404)
            return
        self.reply(200, body, content_type=kind)


@contextlib.contextmanager
def page_server() -> Iterator[str]:
    """A static server on a free loopback port; yields its origin."""
    with Loopback(_Files) as server:
        yield server.base_url


@pytest.fixture
def pages() -> Iterator[tuple[str, str]]:
    """Two front-end origins: the first will be listed, the second not."""
    with page_server() as listed, page_server() as unlisted:
        yield listed, unlisted


@pytest.fixture
def service(tmp_path: Path, pages: tuple[str, str]) -> Iterator[RunningServer]:
    with serve(tmp_path, {"JOBKIT_CORS_ORIGINS": pages[0]}) as running:
        yield running


def preflight(server: RunningServer, origin: str, headers: str) -> httpx.Response:
    return httpx.options(
        f"{server.base_url}{P}/pdf-processing",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


# -- the headers, as any client sees them -----------------------------------------------


def test_a_listed_origin_gets_its_preflight_answered(
    service: RunningServer, pages: tuple[str, str]
) -> None:
    origin = pages[0]
    answer = preflight(service, origin, "authorization,content-type,idempotency-key")
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-none-match"} <= allowed
    assert set(answer.headers["Access-Control-Allow-Methods"].split(", ")) == set(cors.METHODS)
    assert answer.headers["Access-Control-Max-Age"] == str(cors.PREFLIGHT_SECONDS)
    assert "Access-Control-Allow-Credentials" not in answer.headers
    assert "Origin" in answer.headers["Vary"]

    token = service.headers(new_user())
    response = httpx.get(f"{service.base_url}/healthz", headers={"Origin": origin, **token})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Location", "Retry-After"} <= exposed


def test_an_unlisted_origin_gets_no_allowance(
    service: RunningServer, pages: tuple[str, str]
) -> None:
    for origin in (pages[1], "null", "http://127.0.0.1.evil.example", pages[0] + "0"):
        answer = preflight(service, origin, "authorization")
        assert answer.status_code == 400
        assert "Access-Control-Allow-Origin" not in answer.headers
        response = httpx.get(f"{service.base_url}/healthz", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in response.headers
    # A header the service does not take is refused even for the listed origin.
    assert preflight(service, pages[0], "x-custom").status_code == 400


def test_by_default_no_cross_origin_access_at_all(server: RunningServer) -> None:
    answer = preflight(server, "http://127.0.0.1:9", "authorization")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.status_code == 405  # no preflight is answered
    response = httpx.get(f"{server.base_url}/healthz", headers={"Origin": "http://127.0.0.1:9"})
    assert not [name for name in response.headers if name.lower().startswith("access-control")]


# -- a real browser -----------------------------------------------------------------------


@pytest.fixture
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for needed in (CHROMIUM, CHROMEDRIVER):
        assert Path(needed).exists(), (
            f"{needed} is missing: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="jobkit-chromium-") as profile:
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def outcome(driver: Any, page: str, service: RunningServer, user: str) -> dict[str, Any]:
    """Open the front end at `page` against `service` as `user`; what the page saw."""
    fragment = f"api={service.base_url}&token={service.token(user)}"
    driver.get(f"{page}/#{fragment}")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        seen = driver.execute_script("return window.outcome || null")
        if seen is not None:
            assert isinstance(seen, dict)
            return seen
        time.sleep(0.1)
    raise AssertionError(f"the page did not finish: {driver.page_source[:2000]}")


def test_a_browser_page_on_a_listed_origin_submits_and_polls_a_job(
    chromium: Any, service: RunningServer, pages: tuple[str, str]
) -> None:
    user = new_user()
    seen = outcome(chromium, pages[0], service, user)
    assert "error" not in seen, seen
    assert seen["submitStatus"] == 202
    assert seen["location"].startswith(f"{P}/jobs/")
    assert seen["status"] == "completed"
    assert seen["etag"].startswith('"v')
    assert seen["polls"] >= 1
    with service.client(user) as client:
        listed = client.get(f"{P}/jobs").json()["jobs"]
    assert [job["id"] for job in listed] == [seen["location"].rsplit("/", 1)[1]]


def test_a_browser_page_on_an_unlisted_origin_is_refused(
    chromium: Any, service: RunningServer, pages: tuple[str, str]
) -> None:
    user = new_user()
    seen = outcome(chromium, pages[1], service, user)
    assert seen == {"error": "TypeError: Failed to fetch"}
    # The preflight failed, so the upload was never sent: nothing was stored.
    with service.client(user) as client:
        assert client.get(f"{P}/jobs").json()["jobs"] == []
