"""Property-test a job type of your own: a script first, then hypothesis over answers and faults.

Run: `pytest examples/test_word_count.py`, or `python examples/test_word_count.py` (which
runs pytest on this file). Needs the testing extra and pytest:
`pip install 'jobkit[testing]' pytest`. No I/O: every effect is answered by the test.
"""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from jobkit import effects, errors, jobs, pipeline, registry, retry
from jobkit.status import COMPLETED, FAILED, PENDING, PROCESSING
from jobkit.testing import harness, lifecycle, strategies

# -- the job type: in your own package, registered by an entry point ----------------------


def count_words(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    source = jobs.input(job)
    if source is None:
        return Failure(errors.permanent("invalid_input", "no document"))
    data: bytes = yield effects.ReadBlob(key=source.blob)
    try:
        words = len(data.decode("utf-8").split())
    except UnicodeDecodeError:  # found by the property test below, given random bytes
        return Failure(errors.permanent("invalid_input", "the document is not UTF-8 text"))
    yield effects.ReportProgress(current=1, total=2, message="counted")
    key = pipeline.result_key(job, claim)  # one blob per job and attempt
    body = json.dumps({"words": words}).encode()
    written = yield effects.WriteBlob(key=key, data=body, content_type="application/json")
    yield effects.ReportProgress(current=2, total=2, message="done")  # after the write
    return Success(pipeline.Completion(result={"words": words}, document=written))


WORD_COUNT = registry.JobType(
    name="word-count",
    pipeline=count_words,
    input_required=True,
    retry=retry.RetryPolicy(max_attempts=3, backoff=retry.Backoff(base=2, factor=2, cap=60)),
)
CLASSIFIER = WORD_COUNT.retry.classifier

# -- 1. one script: the exact effects, in order --------------------------------------------


@given(strategies.jobs_of(WORD_COUNT, {PROCESSING}))
def test_it_reads_counts_and_writes_in_that_order(job: jobs.Job) -> None:
    claim = jobs.claim(job)
    source = jobs.input(job)
    assert source is not None
    done = harness.run_script(
        count_words(job, claim),
        [
            (effects.ReadBlob(key=source.blob), b"one two  three\n"),
            (effects.ReportProgress(current=1, total=2, message="counted"), None),
            (
                effects.WriteBlob,
                effects.BlobInfo(key="r", size=14, content_type="application/json"),
            ),
            (effects.ReportProgress, None),
        ],
    )
    key = pipeline.result_key(job, claim)
    assert done.outcome.unwrap().result == {"words": 3}
    assert done.outcome.unwrap().document_key == "r"
    assert json.loads(done.written[key]) == {"words": 3}


# -- 2. any answers: generated per effect, failures included --------------------------------

TEXT_OR_BYTES = {effects.ReadBlob: st.text().map(str.encode) | st.binary()}


@settings(deadline=None)  # a loaded CI machine is slow, not wrong
@given(
    strategies.jobs_of(WORD_COUNT, {PROCESSING}),
    strategies.responders(values=TEXT_OR_BYTES, failures=strategies.failures(CLASSIFIER)),
)
def test_whatever_the_answers_it_keeps_the_rules(
    job: jobs.Job, respond: strategies.Responder
) -> None:
    done = harness.run(count_words(job, jobs.claim(job)), respond)  # raises if the pipeline did
    assert harness.check(done) == []  # progress in range, result written before "done", ...
    match done.outcome:
        case Success(completion):
            read = done.steps[0].answer.unwrap()
            assert completion.result["words"] == len(read.decode().split())
        case Failure(err):
            # Either an effect failed (and the attempt stopped there), or the text was bad.
            assert done.failed is not None or err.code == "invalid_input"


# -- 3. fault schedules, through the whole lifecycle -----------------------------------------


@settings(deadline=None)
@given(
    strategies.jobs_of(WORD_COUNT, {PENDING}),
    strategies.fault_schedules(fault=strategies.faults(failures=strategies.failures(CLASSIFIER))),
)
def test_transient_faults_are_retried_and_permanent_ones_are_not(
    job: jobs.Job, schedule: tuple[harness.Fault, ...]
) -> None:
    answers = harness.answers({effects.ReadBlob: b"a few words"})
    done = lifecycle.run_job(WORD_COUNT, job, answers, faults=schedule)
    assert lifecycle.check_job(done) == []  # replays alike; no two attempts share a blob
    for attempt in done.attempts[:-1]:  # each retried attempt failed with a transient error
        assert errors.classify(attempt.run.outcome.failure(), CLASSIFIER)
    last = done.attempts[-1].run
    if last.failed is None:
        assert jobs.status(done.job) is COMPLETED
        assert jobs.result(done.job) == last.outcome.unwrap().result
        assert last.outcome.unwrap().result["words"] == 3
    else:
        assert jobs.status(done.job) is FAILED
        transient = errors.classify(last.outcome.failure(), CLASSIFIER)
        assert not transient or jobs.attempts(done.job) == jobs.max_attempts(done.job)


if __name__ == "__main__":  # pytest in a process of its own, which imports this file afresh
    pytest_run = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"]
    raise SystemExit(subprocess.run(pytest_run, check=False).returncode)
