"""Take the web page's screenshots in `docs/images/` (the README shows them): the list, a
running job and a finished job, on a laptop's width, and the list on a phone's.

Run `.venv/bin/python docs/screenshots.py` (it needs Chromium and its driver, as the
browser tests do). It starts a server on a scratch folder, signs in through a one-time
link, submits jobs through the API and photographs the page as they run.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobkit_http.samples import make_sample  # noqa: E402
from jobkit_http.web import signin  # noqa: E402
from tests.jobkit_http.server import CORRUPT_PDF, SAMPLE_PDF, serve, submit  # noqa: E402
from tests.jobkit_http.web_browser import chromium, wait  # noqa: E402

IMAGES = ROOT / "docs" / "images"
USER = "ada"


def long_pdf(pages: int) -> bytes:
    """A PDF of many pages (the sample's, over and over), slow enough to watch."""
    original = make_sample.PAGES
    make_sample.PAGES = original * (pages // len(original))
    try:
        return make_sample.build()
    finally:
        make_sample.PAGES = original


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, serve(Path(folder), concurrency=1) as server:
        with server.client(USER) as client:
            submit(client, CORRUPT_PDF, form={"maxAttempts": 2, "instructions": "Summarise."})
            finished = submit(client, SAMPLE_PDF, form={"instructions": "List the places."})
            submit(client, SAMPLE_PDF, form={"delaySeconds": 3600, "priority": 80})
            long = long_pdf(1800)  # a few seconds each, one at a time: one is always running
            slow = [submit(client, long, form={"instructions": "Summarise."}) for _ in range(8)]
        with chromium(width=1200, height=820) as driver:
            code = signin.mint(server.data, USER, now=datetime.now(UTC), ttl_seconds=60)
            driver.get(signin.link(server.base_url, code))
            wait(lambda: driver.find_element(By.ID, "live").text == "Live", "the list live")
            wait(
                lambda: "processing" in driver.find_element(By.ID, "jobs").text,
                "a running job in the list",
                timeout=60,
            )
            driver.save_screenshot(str(IMAGES / "jobs.png"))

            with server.client(USER) as client:
                running = client.get("/api/v1/jobs", params={"status": "processing"}).json()
            driver.get(f"{server.base_url}/jobs/{running['jobs'][0]['id']}")
            wait(
                lambda: driver.find_element(By.ID, "progress-box").is_displayed(),
                "the running job's progress",
                timeout=60,
            )
            driver.save_screenshot(str(IMAGES / "job-running.png"))

            driver.set_window_size(1200, 1500)
            driver.get(f"{server.base_url}/jobs/{finished}")
            wait(lambda: driver.find_element(By.ID, "result-body").text, "the result")
            driver.save_screenshot(str(IMAGES / "job-finished.png"))

            driver.set_window_size(390, 844)
            driver.get(server.base_url + "/")
            wait(lambda: driver.find_element(By.ID, "live").text == "Live", "the list live")
            driver.save_screenshot(str(IMAGES / "jobs-phone.png"))
        with httpx.Client(base_url=server.base_url, headers=server.headers(USER)) as http:
            for job_id in slow:  # those not started yet; the others are refused
                http.delete(f"/api/v1/jobs/{job_id}")
    for name in sorted(IMAGES.glob("*.png")):
        print(name.relative_to(ROOT))


if __name__ == "__main__":
    main()
