"""Use jobkit inside a Python program: a custom job type, a local folder, a worker in burst mode.

Run: `python examples/embedded_runtime.py`. Everything lives in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import tempfile

from returns.result import Failure, Success

from jobkit import documents, effects, errors, jobs, pipeline, plugins, registry
from jobkit.local import Runtime


def count_words(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """A pipeline is plain code that yields effects; the runtime performs them."""
    source = jobs.input(job)
    if source is None:
        return Failure(errors.permanent("invalid_input", "no document"))
    text: bytes = yield effects.ReadBlob(key=source.blob)
    words = len(text.decode().split())
    yield effects.ReportProgress(current=1, total=1, message="counted")
    written: effects.BlobInfo = yield effects.WriteBlob(
        key=pipeline.result_key(job, claim),
        data=json.dumps({"words": words}).encode(),
        content_type="application/json",
    )
    return Success(pipeline.Completion(result={"words": words}, document=written))


WORD_COUNT = registry.JobType(name="word-count", pipeline=count_words, input_required=True)


async def main() -> None:
    types = registry.register(plugins.discover(), WORD_COUNT)
    with tempfile.TemporaryDirectory() as folder:
        async with Runtime(folder, types=types) as runtime:
            ids = []
            for text in ["one two three", "the quick brown fox jumps"]:
                submitted = await runtime.submit(
                    {"type": "word-count"}, document=text.encode(), filename="note.txt"
                )
                ids.append(submitted.unwrap()["id"])
            refused = await runtime.submit({"type": "word-count", "priority": 1000})
            assert isinstance(refused, Failure)
            print(f"refused: {refused.failure().message}")

            ran = await runtime.drain()
            print(f"worker ran {ran} attempts")
            for job_id in ids:
                job = await runtime.get(job_id)
                assert job is not None
                assert jobs.status(job) == "completed", documents.to_document(job)
                print(f"{job_id[:8]}: {jobs.status(job)}, {dict(jobs.result(job) or {})}")


if __name__ == "__main__":
    asyncio.run(main())
