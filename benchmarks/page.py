"""The web page's first load: what it transfers and how soon it is interactive.

A server on loopback holds 20 jobs of one user; headless Chromium (as the browser tests
run it) signs in through a one-time link, then each round clears the browser's cache and
opens the jobs list, and reads the Performance API: the bytes transferred for the page
itself (HTML, CSS, scripts) and for its data (the list), the time to the first contentful
paint, to DOMContentLoaded, to the list drawn, and to the list live (its event stream
open: from then on it is current, with no further request). Medians of 7 rounds.

Run: `python benchmarks/page.py` (it needs `chromium` and `chromium-driver`).
"""

from __future__ import annotations

import gzip
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from selenium.webdriver.common.by import By  # noqa: E402

from jobkit_http.web import signin  # noqa: E402
from jobkit_http.web.assets import FOLDER  # noqa: E402
from tests.jobkit_http.server import serve, submit  # noqa: E402
from tests.jobkit_http.web_browser import chromium, wait  # noqa: E402

ROUNDS = 7
USER = "bench"

MEASURE = """
const nav = performance.getEntriesByType("navigation")[0];
const resources = performance.getEntriesByType("resource");
const paint = performance.getEntriesByName("first-contentful-paint")[0];
const mark = (name) => {
  const found = performance.getEntriesByName(name)[0];
  return found ? found.startTime : null;
};
const api = resources.filter((r) => r.name.includes("/api/"));
const page = resources.filter((r) => !r.name.includes("/api/"));
return {
  page_bytes: nav.transferSize + page.reduce((n, r) => n + r.transferSize, 0),
  page_requests: 1 + page.length,
  data_bytes: api.reduce((n, r) => n + r.transferSize, 0),
  fcp_ms: paint ? paint.startTime : null,
  dom_content_loaded_ms: nav.domContentLoadedEventEnd,
  listed_ms: mark("jobkit:listed"),
  live_ms: mark("jobkit:live"),
};
"""


def main() -> None:
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder, serve(Path(folder)) as server:
        with server.client(USER) as client:
            for _ in range(20):
                submit(client, form={"delaySeconds": 3600})
        with chromium() as driver:
            code = signin.mint(server.data, USER, now=datetime.now(UTC), ttl_seconds=60)
            driver.get(signin.link(server.base_url, code))
            wait(lambda: driver.find_element(By.ID, "live").text == "Live", "signed in")
            for _ in range(ROUNDS):
                driver.execute_cdp_cmd("Network.clearBrowserCache", {})
                driver.get(server.base_url + "/")
                wait(lambda: driver.execute_script(
                    "return performance.getEntriesByName('jobkit:live').length"
                ), "the list live")  # fmt: skip
                time.sleep(0.2)
                rounds.append(driver.execute_script(MEASURE))
    print(f"first load of the jobs list (median of {ROUNDS} cold-cache loads, 20 jobs listed)")
    for key in rounds[0]:
        values = [r[key] for r in rounds if r[key] is not None]
        print(f"  {key:<24} {statistics.median(values):>10,.1f}"
              f"   (min {min(values):,.1f}, max {max(values):,.1f})")  # fmt: skip
    msal = FOLDER / "vendor" / "msal-browser.min.js"
    squeezed = len(gzip.compress(msal.read_bytes(), 9))
    print(f"  with Entra ID, MSAL adds {squeezed:,} bytes gzipped ({msal.stat().st_size:,} raw)")


if __name__ == "__main__":
    main()
