from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pypdf
import pytest
from returns.result import Result

from jobkit import effects, errors, jobs, ports
from jobkit.local import FileBlobStore, Runtime, bounded, offline
from jobkit.status import COMPLETED, FAILED
from jobkit.worker.worker import WorkerConfig
from jobkit_http import samples
from jobkit_http.samples import make_sample
from tests.jobkit.local import crafted

SAMPLE = Path(samples.__file__).with_name("sample.pdf")
PAGE_WORDS = (
    ("Lighthouse", "granite headland", "counts the gulls"),
    ("Orchard", "beekeepers", "cider press"),
    ("Glacier", "moraine", "logbook"),
)
Call = tuple[int, int, str]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def analyze_request(key: str = "doc.pdf", **fields: Any) -> effects.Analyze:
    return effects.Analyze(
        key=key, content_type="application/pdf", instructions="Summarise it.", **fields
    )


async def analyze(
    root: Path,
    data: bytes | None,
    *,
    request: effects.Analyze | None = None,
    runner: bounded.Runner | None = None,
    **limits: int,
) -> tuple[Result[effects.Analysis, errors.Error], list[Call]]:
    """Store `data` (unless None) as `doc.pdf` in a real blob store and analyse it."""
    store = FileBlobStore(root)
    if data is not None:
        await store.put_bytes("doc.pdf", data, "application/pdf")
    calls: list[Call] = []

    async def progress(current: int, total: int, message: str) -> None:
        calls.append((current, total, message))

    analyzer = offline.OfflinePdfAnalyzer(store, runner=runner, **limits)
    return await analyzer.analyze(request or analyze_request(), progress), calls


def repeated(pages: int, *, password: str | None = None, algorithm: str = "RC4-128") -> bytes:
    """A PDF of the sample's pages, repeated to `pages` pages, optionally encrypted."""
    reader = pypdf.PdfReader(SAMPLE)
    writer = pypdf.PdfWriter()
    for number in range(pages):
        writer.add_page(reader.pages[number % len(reader.pages)])
    if password is not None:
        writer.encrypt(password, "owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def failure(result: Result[Any, errors.Error]) -> errors.Error:
    err: errors.Error = result.failure()  # raises on a Success
    return err


# -- the sample --------------------------------------------------------------


def test_the_sample_is_what_the_generator_writes() -> None:
    data = SAMPLE.read_bytes()
    assert data == make_sample.build()
    assert len(data) < 10 * 1024
    with pypdf.PdfReader(SAMPLE, strict=True) as reader:  # hand-written, so check it strictly
        assert len(reader.pages) == 3
        assert reader.metadata is not None
        assert reader.metadata.title == make_sample.TITLE


def test_the_sample_is_analysed_page_by_page(tmp_path: Path) -> None:
    result, calls = run(analyze(tmp_path, SAMPLE.read_bytes()))

    analysis = result.unwrap()
    assert analysis.model == "offline-pypdf"
    assert analysis.pages == 3
    pages = analysis.output["pages"]
    assert [page["page"] for page in pages] == [1, 2, 3]
    for page, words in zip(pages, PAGE_WORDS, strict=True):
        assert all(word in page["text"] for word in words)
        assert page["characters"] == len(page["text"])
        assert page["truncated"] is False
    assert "Orchard" not in pages[0]["text"]
    assert analysis.output["text"].startswith("Chapter 1: The Lighthouse")
    assert analysis.output["instructions"] == "Summarise it."
    assert analysis.output["note"] == offline.NOTE
    assert analysis.document["metadata"] == {
        "title": make_sample.TITLE,
        "author": make_sample.AUTHOR,
        "subject": make_sample.SUBJECT,
        "creator": make_sample.CREATOR,
        "producer": make_sample.PRODUCER,
        "creationDate": "2024-03-01T12:00:00+00:00",
    }
    assert analysis.usage == {"pages": 3, "characters": sum(p["characters"] for p in pages)}
    assert calls == [(1, 3, "page 1 of 3"), (2, 3, "page 2 of 3"), (3, 3, "page 3 of 3")]


def test_a_schema_is_acknowledged_and_ignored(tmp_path: Path) -> None:
    request = analyze_request(schema={"type": "object"}, model="gemini-2.5-pro")
    result, _ = run(analyze(tmp_path, SAMPLE.read_bytes(), request=request))

    analysis = result.unwrap()
    assert analysis.model == "offline-pypdf"
    assert analysis.output["note"] == offline.NOTE + offline.SCHEMA_NOTE


def test_long_pages_are_cut_and_the_overview_is_bounded(tmp_path: Path) -> None:
    result, _ = run(analyze(tmp_path, repeated(30), max_chars_per_page=50))

    analysis = result.unwrap()
    pages = analysis.output["pages"]
    assert all(page["characters"] == 50 and page["truncated"] for page in pages)
    assert analysis.usage["characters"] == 30 * 50

    result, _ = run(analyze(tmp_path, repeated(30)))
    assert len(result.unwrap().output["text"]) == offline.OVERVIEW_CHARS


# -- refusals ------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", "secret"])
@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_an_encrypted_pdf_is_refused_even_with_an_empty_password(
    tmp_path: Path, password: str, algorithm: str
) -> None:
    result, calls = run(analyze(tmp_path, repeated(3, password=password, algorithm=algorithm)))

    err = failure(result)
    assert (err.code, err.retryable) == ("encrypted_document", False)
    assert "encrypted" in err.message
    assert calls == []


def truncated() -> bytes:
    data = SAMPLE.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(truncated(), "truncated", id="truncated"),
        pytest.param(random.Random(7).randbytes(4096), "no %PDF- header", id="random"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(
            b"<!doctype html><html><body><h1>Report</h1></body></html>",
            "no %PDF- header",
            id="html",
        ),
        pytest.param(
            b"%PDF-1.7\n" + random.Random(8).randbytes(4096), "truncated", id="pdf-header-noise"
        ),
        pytest.param(repeated(0), "it has no pages", id="no-pages"),
    ],
)
def test_a_file_that_is_not_a_readable_pdf_is_corrupt(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    result, calls = run(analyze(tmp_path, data))

    err = failure(result)
    assert (err.code, err.retryable) == ("corrupt_document", False)
    assert err.message.startswith("the document is not a readable PDF: ")
    assert reason in err.message
    assert calls == []


def test_pypdf_errors_are_named_in_the_context(tmp_path: Path) -> None:
    result, _ = run(analyze(tmp_path, truncated()))

    assert failure(result).context["exception"] == "PdfStreamError"


def test_a_missing_blob_is_not_found(tmp_path: Path) -> None:
    result, _ = run(analyze(tmp_path, None))

    err = failure(result)
    assert (err.code, err.retryable) == ("not_found", False)
    assert err.context == {"key": "doc.pdf"}


def test_too_many_pages_are_refused_before_any_extraction(tmp_path: Path) -> None:
    result, calls = run(analyze(tmp_path, SAMPLE.read_bytes(), max_pages=2))

    err = failure(result)
    assert (err.code, err.retryable) == ("too_many_pages", False)
    assert err.context == {"pages": 3, "max_pages": 2}
    assert calls == []


@pytest.mark.parametrize("limits", [{"max_pages": 0}, {"max_chars_per_page": 0}])
def test_limits_must_be_positive(tmp_path: Path, limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        offline.OfflinePdfAnalyzer(FileBlobStore(tmp_path), **limits)  # type: ignore[arg-type]


# -- in a bounded pool ------------------------------------------------------------------

LIMITS = bounded.Limits(cpu_seconds=2, memory_bytes=512 * 1024 * 1024, wall_seconds=60)


def in_pool(root: Path, data: bytes) -> tuple[Result[effects.Analysis, errors.Error], list[Call]]:
    async def body() -> tuple[Result[effects.Analysis, errors.Error], list[Call]]:
        async with bounded.Pool(workers=1, limits=LIMITS) as pool:
            return await analyze(root, data, runner=pool)

    outcome: tuple[Result[effects.Analysis, errors.Error], list[Call]] = run(body())
    return outcome


def test_in_a_pool_the_analysis_and_its_progress_are_the_same(tmp_path: Path) -> None:
    here = run(analyze(tmp_path / "here", SAMPLE.read_bytes()))
    there = in_pool(tmp_path / "there", SAMPLE.read_bytes())
    assert there == here
    assert there[0].unwrap().pages == 3


def test_in_a_pool_refusals_are_the_same(tmp_path: Path) -> None:
    for data, code in [(truncated(), "corrupt_document"), (repeated(3, password=""), "encrypted")]:
        result, calls = in_pool(tmp_path, data)
        assert failure(result).code.startswith(code)
        assert calls == []


def test_a_document_past_the_cpu_limit_is_too_complex_and_costs_this_process_nothing(
    tmp_path: Path,
) -> None:
    data = crafted.many_pages_one_stream()
    assert len(data) < 16 * 1024
    spent = time.process_time()
    result, calls = in_pool(tmp_path, data)
    spent = time.process_time() - spent

    err = failure(result)
    assert (err.code, err.retryable, err.context["limit"]) == ("document_too_complex", False, "cpu")
    assert calls == []  # the first page never finished
    assert spent < 1.0  # the parsing was the child's: this process only waited


def test_a_huge_stream_is_too_complex_under_pypdf_s_tightened_limits(tmp_path: Path) -> None:
    data = crafted.one_huge_stream()
    assert len(data) < 80 * 1024
    for result, _ in (in_pool(tmp_path, data), run(analyze(tmp_path, data))):
        err = failure(result)
        assert (err.code, err.retryable, err.context["limit"]) == (
            "document_too_complex",
            False,
            "pypdf",
        )


def test_page_count_parses_in_the_runner(tmp_path: Path) -> None:
    async def body() -> list[Result[int, errors.Error]]:
        async with bounded.Pool(workers=1, limits=LIMITS) as pool:
            return [
                await offline.page_count(pool, SAMPLE.read_bytes()),
                await offline.page_count(pool, b"%PDF-1.7 nothing else"),
                await offline.page_count(bounded.InThread(), repeated(5)),
            ]

    counted, broken, here = run(body())
    assert counted.unwrap() == 3
    assert failure(broken).code == "corrupt_document"
    assert here.unwrap() == 5


# -- the event loop --------------------------------------------------------------


def test_extraction_does_not_block_the_event_loop(tmp_path: Path) -> None:
    pages = 120
    data = repeated(pages)

    async def scenario() -> tuple[int, list[Call]]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        result, calls = await analyze(tmp_path, data)
        during = ticks - before
        task.cancel()
        assert result.unwrap().pages == pages
        return during, calls

    during, calls = run(scenario())
    assert [call[0] for call in calls] == list(range(1, pages + 1))
    # Work on the loop with a yield per page would tick about once a page; in threads the
    # loop keeps turning while each page is extracted.
    assert during > 2 * pages


# -- end to end through the embedded runtime ------------------------------------------


class Watched:
    """The real analyzer, recording the job's stored progress after each report."""

    def __init__(self, runtime: Runtime) -> None:
        self.inner = offline.OfflinePdfAnalyzer(runtime.blobs)
        self.runtime = runtime
        self.job_id = ""
        self.stored: list[dict[str, Any]] = []

    async def analyze(
        self, effect: effects.Analyze, progress: ports.Progress
    ) -> Result[effects.Analysis, errors.Error]:
        async def watched(current: int, total: int, message: str) -> None:
            await progress(current, total, message)
            job = await self.runtime.get(self.job_id)
            assert job is not None
            self.stored.append(dict(jobs.progress(job) or {}))

        return await self.inner.analyze(effect, watched)


def test_a_job_analyses_the_sample_end_to_end(tmp_path: Path) -> None:
    async def scenario() -> tuple[jobs.Job, dict[str, Any], list[dict[str, Any]]]:
        async with Runtime(tmp_path) as runtime:
            watched = Watched(runtime)
            runtime.analyzer = watched
            submitted = await runtime.submit({"type": "pdf-analysis"}, document=SAMPLE)
            watched.job_id = jobs.id(submitted.unwrap())
            assert await runtime.drain(WorkerConfig(progress_seconds=0.0)) == 1
            job = await runtime.get(watched.job_id)
            assert job is not None
            key = jobs.result_key(job)
            assert key is not None
            document = json.loads(await runtime.blobs.read(key))
            return job, document, watched.stored

    job, document, stored = run(scenario())

    assert jobs.status(job) == COMPLETED
    assert jobs.attempts(job) == 1
    assert jobs.result_key(job) == f"results/{jobs.id(job)}/attempt-1.json"
    assert dict(jobs.result(job) or {}) == {
        "model": "offline-pypdf",
        "pages": 3,
        "bytes": SAMPLE.stat().st_size,
    }
    assert [jobs.entry_outcome(entry) for entry in jobs.history(job)] == [jobs.SUCCEEDED]
    assert stored == [{"current": n, "total": 3, "message": f"page {n} of 3"} for n in (1, 2, 3)]
    assert dict(jobs.progress(job) or {}) == {"current": 3, "total": 3, "message": "result saved"}
    assert document["model"] == "offline-pypdf"
    assert document["document"]["filename"] == "sample.pdf"
    assert document["document"]["metadata"]["author"] == make_sample.AUTHOR
    texts = [page["text"] for page in document["output"]["pages"]]
    for text, words in zip(texts, PAGE_WORDS, strict=True):
        assert all(word in text for word in words)


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        pytest.param(b"<html><body>not a pdf</body></html>", "corrupt_document", id="corrupt"),
        pytest.param(repeated(3, password=""), "encrypted_document", id="encrypted"),
    ],
)
def test_a_job_with_an_unreadable_upload_fails_at_once(
    tmp_path: Path, upload: bytes, code: str
) -> None:
    async def scenario() -> jobs.Job:
        async with Runtime(tmp_path) as runtime:
            runtime.analyzer = offline.OfflinePdfAnalyzer(runtime.blobs)
            submitted = await runtime.submit(
                {"type": "pdf-analysis"}, document=upload, filename="report.pdf"
            )
            await runtime.drain()
            job = await runtime.get(jobs.id(submitted.unwrap()))
            assert job is not None
            return job

    job = run(scenario())

    assert jobs.status(job) == FAILED
    assert jobs.attempts(job) == 1
    err = jobs.error(job)
    assert err is not None
    assert (err.code, err.retryable) == (code, False)
    assert [jobs.entry_outcome(entry) for entry in jobs.history(job)] == [jobs.FAILED]
    assert jobs.result(job) is None
