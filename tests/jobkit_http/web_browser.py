"""A real browser for the web page's tests: Debian's headless Chromium, driven by Selenium,
and a recorder of the requests the server gets (to check what the page asks, and when).

Chromium and its driver are part of the test set-up (`.ci/run` installs `chromium` and
`chromium-driver`): without them the tests fail, they never skip.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
from starlette.types import ASGIApp, Receive, Scope, Send

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


@contextlib.contextmanager
def chromium(*, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for needed in (CHROMIUM, CHROMEDRIVER):
        assert Path(needed).exists(), (
            f"{needed} is missing: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory(prefix="jobkit-web-chromium-") as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        driver.set_window_size(width, height)
        try:
            yield driver
        finally:
            driver.quit()


def wait(check: Callable[[], Any], what: str, timeout: float = 30.0, driver: Any = None) -> Any:
    """Call `check` until it returns something truthy; that value. Fails saying `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            found = check()
            if found:
                return found
        time.sleep(0.05)
    page = "" if driver is None else f"\nthe page: {driver.page_source[:3000]}"
    raise AssertionError(f"timed out waiting for {what}{page}")


def problems_in_console(driver: Any) -> list[str]:
    """Errors the page logged: script errors, policy (CSP) violations, failed loads."""
    entries = driver.get_log("browser")
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


@attrs.frozen
class Hit:
    at: float
    method: str
    path: str
    query: str


class Recorder:
    """ASGI middleware remembering every HTTP request the server gets, in order."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hit = Hit(
                time.monotonic(),
                scope["method"],
                scope["path"],
                scope["query_string"].decode("latin-1"),
            )
            with self._lock:
                self.hits.append(hit)
        await self.app(scope, receive, send)

    def since(self, start: float) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.at >= start]
