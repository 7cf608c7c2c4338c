"""The web page in a real browser (headless Chromium): signing in through a one-time link,
uploading the sample PDF and watching it run without a reload or a poll, reading its
result, retrying a failed job, cancelling a scheduled one, and the API's refusals.

The server records every request it gets, so the tests check what the page asks for as
well as what it shows: while a stream is open, nothing polls.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from jobkit_http.web import signin
from jobkit_http.web import site as site_module
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import CORRUPT_PDF, SAMPLE_PDF, RunningServer, serve, submit
from tests.jobkit_http.web_browser import Recorder, chromium, problems_in_console, wait

P = "/api/v1"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Recorder]]:
    recorders: list[Recorder] = []

    def wrap(app: Any) -> Recorder:
        recorders.append(Recorder(app))
        return recorders[-1]

    with serve(tmp_path_factory.mktemp("web"), wrap=wrap) as running:
        yield running, recorders[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def site(recorded: tuple[RunningServer, Recorder]) -> RunningServer:
    return recorded[0]


@pytest.fixture
def recorder(recorded: tuple[RunningServer, Recorder]) -> Recorder:
    return recorded[1]


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "sample.pdf"
    path.write_bytes(SAMPLE_PDF)
    return path


def sign_in(driver: Any, server: RunningServer, user: str) -> None:
    """Open a fresh one-time link, as `jobkit serve` prints it, and land on the list."""
    code = signin.mint(server.data, user, now=datetime.now(UTC), ttl_seconds=60)
    driver.get(signin.link(server.base_url, code))
    wait(
        lambda: driver.find_element(By.ID, "who").text == user, "the signed-in user", driver=driver
    )


def text(driver: Any, element_id: str) -> str:
    found: str = driver.find_element(By.ID, element_id).text
    return found


def badge(driver: Any) -> str:
    return text(driver, "status")


def script(driver: Any, code: str, *args: Any) -> Any:
    """Read the page in one step: rows and badges are replaced as the page updates, so an
    element found in one WebDriver call may be gone by the next."""
    return driver.execute_script(code, *args)


def rows(driver: Any) -> list[str]:
    found: list[str] = script(
        driver, "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.id)"
    )
    return found


def row_text(driver: Any, job_id: str) -> str:
    found: str = script(
        driver,
        "const r = document.querySelector(`tr[data-id='${arguments[0]}']`);"
        " return r ? r.innerText : ''",
        job_id,
    )
    return found


def no_reload_marker(driver: Any) -> None:
    """Put a value in the page that a reload would wipe."""
    driver.execute_script("window.__stayed = true")


def stayed(driver: Any) -> bool:
    return bool(driver.execute_script("return window.__stayed === true"))


# -- signing in ----------------------------------------------------------------------------


def test_the_local_link_signs_in_once(browser: Any, site: RunningServer) -> None:
    user = new_user()
    code = signin.mint(site.data, user, now=datetime.now(UTC), ttl_seconds=60)
    browser.get(signin.link(site.base_url, code))
    wait(lambda: browser.current_url == site.base_url + "/", "the jobs list", driver=browser)
    wait(lambda: text(browser, "who") == user, "the user's name", driver=browser)
    wait(lambda: text(browser, "live") == "Live", "the list's stream", driver=browser)
    assert "#code" not in browser.current_url

    browser.execute_script("sessionStorage.clear()")
    browser.get(signin.link(site.base_url, code))  # the same link again: refused
    wait(lambda: "used already" in text(browser, "message"), "the refusal", driver=browser)
    assert problems_in_console(browser) == [] or all(
        "401" in line for line in problems_in_console(browser)
    )


def test_without_a_session_the_page_sends_you_to_sign_in(browser: Any, site: RunningServer) -> None:
    browser.get(site.base_url + "/signin")
    browser.execute_script("sessionStorage.clear()")
    browser.get(site.base_url + "/new")
    wait(lambda: "/signin?next=%2Fnew" in browser.current_url, "the sign-in page", driver=browser)
    assert "jobkit signin" in browser.find_element(By.ID, "local-help").text


# -- a job, end to end ---------------------------------------------------------------------


def test_upload_then_watch_the_job_run_without_reload_or_polling(
    browser: Any, site: RunningServer, recorder: Recorder, pdf: Path, tmp_path: Path
) -> None:
    user = new_user()
    sign_in(browser, site, user)
    browser.get(site.base_url + "/new")
    browser.find_element(By.ID, "file").send_keys(str(pdf))
    browser.find_element(By.ID, "instructions").send_keys("List the places.")
    # Scheduled a few seconds ahead, so that the page shows it pending, then running.
    soon = (datetime.now() + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    browser.execute_script("document.getElementById('run-at').value = arguments[0]", soon)
    browser.find_element(By.ID, "submit").click()

    wait(lambda: "/jobs/" in browser.current_url, "the job's page", driver=browser)
    job_id = browser.current_url.rsplit("/", 1)[1]
    wait(lambda: badge(browser) == "pending", "the job pending", driver=browser)
    wait(lambda: text(browser, "live") == "Live", "the job's stream", driver=browser)
    no_reload_marker(browser)
    watching = time.monotonic()

    wait(lambda: badge(browser) == "completed", "the job completed", driver=browser)
    assert stayed(browser), "the page reloaded"
    result = wait(lambda: text(browser, "result-body"), "the result", driver=browser)
    assert "sample.pdf" in result or "pages" in result
    assert "Attempt 1" in text(browser, "timeline")
    assert "succeeded" in text(browser, "timeline")

    hits = [hit for hit in recorder.since(watching) if job_id in hit.path]
    assert [h for h in hits if h.path.endswith("/status")] == []  # no polling of the status
    streams = [h for h in hits if h.path.endswith("/events")]
    assert len(streams) <= 1  # the stream opened before `watching` stayed open throughout
    reads = [h for h in hits if h.path == f"{P}/jobs/{job_id}"]
    assert 1 <= len(reads) <= 3  # once per change of status (processing, completed), no more
    with site.client(user) as client:
        assert client.get(f"{P}/jobs/{job_id}").json()["status"] == "completed"
        served = client.get(f"{P}/jobs/{job_id}/result").json()
    assert problems_in_console(browser) == []

    # Downloaded as JSON: the result document itself.
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )
    browser.find_element(By.ID, "download").click()
    saved = folder / f"job-{job_id}-result.json"
    wait(saved.exists, "the downloaded result", driver=browser)
    assert json.loads(wait(saved.read_text, "its content", driver=browser)) == served


def test_the_list_shows_new_jobs_and_their_changes_live(
    browser: Any, site: RunningServer, recorder: Recorder
) -> None:
    user = new_user()
    sign_in(browser, site, user)
    wait(lambda: text(browser, "live") == "Live", "the list's stream", driver=browser)
    no_reload_marker(browser)
    watching = time.monotonic()
    with site.client(user) as client:
        later = submit(client, form={"delaySeconds": 3600})
        now = submit(client)
    wait(lambda: len(rows(browser)) == 2, "two rows", driver=browser)
    assert rows(browser)[0] == now  # newest first
    wait(
        lambda: "completed" in row_text(browser, now),
        "the second job completed in its row",
        driver=browser,
    )
    assert "pending" in row_text(browser, later)
    assert stayed(browser)
    listed = [h for h in recorder.since(watching) if h.path == f"{P}/jobs" and h.method == "GET"]
    assert listed == []  # the rows came from the stream, not from reading the list again

    with site.client(user) as client:
        assert client.delete(f"{P}/jobs/{later}").status_code == 200
        assert client.delete(f"{P}/jobs/{later}/record").status_code == 204
    wait(lambda: rows(browser) == [now], "the deleted row gone", driver=browser)


def test_retry_a_failed_job(browser: Any, site: RunningServer) -> None:
    user = new_user()
    sign_in(browser, site, user)
    with site.client(user) as client:
        job_id = submit(client, CORRUPT_PDF, form={"maxAttempts": 1})
    browser.get(f"{site.base_url}/jobs/{job_id}")
    wait(lambda: badge(browser) == "failed", "the job failed", driver=browser)
    assert "corrupt_document" in text(browser, "error-text")
    no_reload_marker(browser)
    browser.find_element(By.ID, "retry").click()
    wait(
        lambda: text(browser, "timeline").count("Attempt") == 2,
        "a second attempt in the timeline",
        driver=browser,
    )
    wait(lambda: badge(browser) == "failed", "the retried job failed again", driver=browser)
    assert browser.find_element(By.ID, "retry").is_displayed()
    assert stayed(browser)


def test_cancel_a_scheduled_job_then_delete_it(browser: Any, site: RunningServer) -> None:
    user = new_user()
    sign_in(browser, site, user)
    with site.client(user) as client:
        job_id = submit(client, form={"delaySeconds": 3600})
    browser.get(f"{site.base_url}/jobs/{job_id}")
    wait(lambda: badge(browser) == "pending", "the job pending", driver=browser)
    assert "Runs at" in text(browser, "facts")
    assert not browser.find_element(By.ID, "retry").is_displayed()
    browser.find_element(By.ID, "cancel").click()
    wait(lambda: badge(browser) == "cancelled", "the job cancelled", driver=browser)
    assert not browser.find_element(By.ID, "cancel").is_displayed()
    browser.find_element(By.ID, "delete").click()
    browser.switch_to.alert.accept()
    wait(lambda: browser.current_url == site.base_url + "/", "back to the list", driver=browser)
    with site.client(user) as client:
        assert client.get(f"{P}/jobs/{job_id}").status_code == 404


# -- refusals ------------------------------------------------------------------------------


def test_an_upload_refusal_shows_the_problems_message(
    browser: Any, site: RunningServer, pdf: Path
) -> None:
    sign_in(browser, site, new_user())
    browser.get(site.base_url + "/new")
    browser.find_element(By.ID, "file").send_keys(str(pdf))
    browser.find_element(By.ID, "schema").send_keys("{not json")
    browser.find_element(By.ID, "submit").click()
    message = wait(lambda: text(browser, "message"), "the refusal", driver=browser)
    assert "invalid" in message.lower()
    assert "schema" in text(browser, "field-errors")
    assert "/new" in browser.current_url


def test_a_large_file_goes_to_a_signed_url_then_the_job_names_it(
    browser: Any, pdf: Path, tmp_path: Path
) -> None:
    """Above `JOBKIT_DIRECT_UPLOAD_ABOVE` (here: every file) the page asks for an upload URL,
    sends the file there, and submits the job naming the upload."""
    hits: list[tuple[str, str]] = []

    def wrap(app: Any) -> Any:
        async def watched(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                hits.append((scope["method"], scope["path"]))
            await app(scope, receive, send)

        return watched

    problems_in_console(browser)  # what earlier tests left there
    with serve(tmp_path / "data", {"JOBKIT_DIRECT_UPLOAD_ABOVE": "0"}, wrap=wrap) as server:
        user = new_user()
        sign_in(browser, server, user)
        browser.get(server.base_url + "/new")
        browser.find_element(By.ID, "file").send_keys(str(pdf))
        browser.find_element(By.ID, "instructions").send_keys("List the places.")
        browser.find_element(By.ID, "schema").send_keys('{"type": "object"}')
        browser.find_element(By.ID, "submit").click()
        wait(lambda: "/jobs/" in browser.current_url, "the job's page", driver=browser)
        job_id = browser.current_url.rsplit("/", 1)[1]
        wait(lambda: badge(browser) == "completed", "the job completed", driver=browser)
        with server.client(user) as client:
            job = client.get(f"{P}/jobs/{job_id}").json()
        assert job["input"]["filename"] == "sample.pdf"
        assert job["params"]["schema"] == {"type": "object"}
        assert problems_in_console(browser) == []
    posts = [p for m, p in hits if m in {"POST", "PUT"} and p.startswith(f"{P}/")]
    assert posts == [f"{P}/uploads", next(p for p in posts if p.endswith(job_id)), f"{P}/jobs"]
    assert f"{P}/pdf-processing" not in posts


def test_another_users_job_is_not_found(browser: Any, site: RunningServer) -> None:
    with site.client(new_user()) as client:
        theirs = submit(client, form={"delaySeconds": 3600})
    sign_in(browser, site, new_user())
    browser.get(f"{site.base_url}/jobs/{theirs}")
    message = wait(lambda: text(browser, "message"), "the refusal", driver=browser)
    assert message == f"no job {theirs}"
    assert not browser.find_element(By.ID, "job").is_displayed()


# -- the page's rules -----------------------------------------------------------------------


def test_pages_and_files_carry_the_security_headers(site: RunningServer) -> None:
    page = httpx.get(site.base_url + "/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    script = page.text.split('src="', 2)[1].split('"')[0]
    asset = httpx.get(site.base_url + script, headers={"Accept-Encoding": "gzip"})
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["x-content-type-options"] == "nosniff"
    api = httpx.get(site.base_url + "/healthz")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["x-content-type-options"] == "nosniff"
    refused = httpx.get(site.base_url + "/api/v1/jobs")  # a problem document too
    assert refused.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_page_has_no_inline_script(site: RunningServer) -> None:
    for path in ("/", "/new", "/signin", f"/jobs/{'0' * 8}-0000-0000-0000-{'0' * 12}"):
        html = httpx.get(site.base_url + path).text
        for tag in html.split("<script")[1:]:
            opening, _, rest = tag.partition(">")
            body = rest.split("</script>")[0]
            assert 'src="' in opening or 'type="application/json"' in opening, path
            assert 'src="' not in opening or body == "", path


# -- accessibility ---------------------------------------------------------------------------


def test_every_control_is_labelled_and_reachable_by_keyboard(
    browser: Any, site: RunningServer
) -> None:
    sign_in(browser, site, new_user())
    for path in ("/", "/new"):
        browser.get(site.base_url + path)
        wait(lambda: text(browser, "who"), "the page", driver=browser)
        unlabelled = script(
            browser,
            "return [...document.querySelectorAll('input, select, textarea, progress')]"
            ".filter(c => !c.hidden && !c.labels?.length && !c.getAttribute('aria-label'))"
            ".map(c => c.outerHTML)",
        )
        assert unlabelled == [], path
        nameless = script(
            browser,
            "return [...document.querySelectorAll('button, a')]"
            ".filter(b => !b.hidden && !b.textContent.trim() && !b.getAttribute('aria-label'))"
            ".map(b => b.outerHTML)",
        )
        assert nameless == [], path
    # The first Tab reaches the skip link, shown with a visible focus ring.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = script(
        browser,
        "const e = document.activeElement; const s = getComputedStyle(e);"
        " return [e.textContent, e.matches(':focus-visible'), s.outlineStyle, s.left]",
    )
    assert focused[0] == "Skip to the content"
    assert focused[1] is True
    assert focused[2] != "none"
    # The form can be filled and sent without a mouse: Tab to the button, Enter.
    browser.find_element(By.ID, "instructions").send_keys("x")
    for _ in range(20):  # a date and time field has a stop for each of its parts
        if script(browser, "return document.activeElement.id") == "submit":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert script(browser, "return document.activeElement.id") == "submit"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    message = wait(lambda: text(browser, "message"), "the form's answer", driver=browser)
    assert message == "Choose a PDF document to analyse."


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_text_colours_keep_a_contrast_of_4_5_to_1_in_both_schemes() -> None:
    css = (Path(site_module.__file__).parent / "static" / "app.css").read_text()
    light, dark = css.split("@media (prefers-color-scheme: dark)", 1)
    pairs = [
        ("fg", "bg"),
        ("fg", "panel"),
        ("muted", "bg"),
        ("muted", "panel"),
        ("accent", "bg"),
        ("accent", "panel"),
        ("accent-fg", "accent"),
        ("danger", "bg"),
        *((name, f"{name}-bg") for name in STATUSES),
    ]
    for scheme in (light, dark):
        colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", scheme.split("}")[0]))
        for text_colour, background in pairs:
            ratio = contrast(colours[text_colour], colours[background])
            assert ratio >= 4.5, (text_colour, background, round(ratio, 2))


STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
