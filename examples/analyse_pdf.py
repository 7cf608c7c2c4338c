"""Analyse a PDF from Python with the embedded default: no server, no cloud.

Run: `python examples/analyse_pdf.py [FILE.pdf]` (default: the bundled sample).
Needs the `http` extra for the offline analyzer (pypdf): `pip install 'jobkit[http]'`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from jobkit import jobs
from jobkit.local import Runtime
from jobkit.local.offline import OfflinePdfAnalyzer

SAMPLE = Path(__file__).resolve().parents[1] / "jobkit_http" / "samples" / "sample.pdf"


async def main(document: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with Runtime(folder) as runtime:  # SQLite + a folder of blobs
            runtime.analyzer = OfflinePdfAnalyzer(runtime.blobs)
            submitted = await runtime.submit({"type": "pdf-analysis"}, document=document)
            job_id = jobs.id(submitted.unwrap())
            await runtime.drain()  # a worker in burst mode: run what is due, then return
            job = await runtime.get(job_id)
            assert job is not None
            print(f"{document.name}: {jobs.status(job)} after {jobs.attempts(job)} attempt(s)")
            key = jobs.result_key(job)  # where the succeeded attempt wrote its result document
            assert key is not None
            answer = json.loads(await runtime.blobs.read(key))
            for page in answer["output"]["pages"]:
                print(f"  page {page['page']}: {page['text'][:60]!r}...")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE))
