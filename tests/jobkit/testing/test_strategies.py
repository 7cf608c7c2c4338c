"""The public strategies draw what they promise: real jobs in the status asked for, answers
that fit each effect's contract, errors classified as asked, and faults within bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from jobkit import _frozen, effects, errors, jobs, records, registry, retry, submission
from jobkit.jobtypes import pdf
from jobkit.status import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING, Status
from jobkit.testing import harness, strategies
from tests.jobkit import strategies as internal

EFFECTS: list[effects.PipelineEffect] = [
    effects.StatBlob(key="inputs/a"),
    effects.ReadBlob(key="inputs/a"),
    effects.WriteBlob(key="results/a", data=b"{}", content_type="application/json"),
    effects.DeleteBlob(key="results/a"),
    effects.Analyze(key="inputs/a", content_type="application/pdf", instructions="read"),
    effects.ReportProgress(current=0, total=1),
]


def test_the_namespace_lists_what_it_holds() -> None:
    assert all(hasattr(strategies, name) for name in strategies.__all__)
    public = {n for n in vars(strategies) if not n.startswith("_") and n != "annotations"}
    assert public == set(strategies.__all__)


def test_jobkit_testing_lists_what_it_holds_strategies_included() -> None:
    import jobkit.testing

    assert all(hasattr(jobkit.testing, name) for name in jobkit.testing.__all__)
    assert jobkit.testing.strategies is strategies
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = jobkit.testing.nothing


def test_jobkit_testing_loads_hypothesis_only_when_strategies_are_used() -> None:
    code = (
        "import sys, jobkit.testing as t; before = 'hypothesis' in sys.modules; "
        "t.strategies.jobs_of; print(before, 'hypothesis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


# -- jobs --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status), ids=str)
@given(data=st.data())
def test_jobs_of_gives_jobs_in_the_status_asked_for(status: Status, data: st.DataObject) -> None:
    job = data.draw(strategies.jobs_of(pdf.JOB_TYPE, {status}))
    assert jobs.status(job) is status
    assert jobs.type_name(job) == pdf.NAME
    assert records.from_json(records.to_json(job)) == job
    if status is PROCESSING:
        assert jobs.lease_owner(job) in strategies.WORKERS
        assert jobs.claim(job) >= 1
    if status is FAILED:
        assert jobs.error(job) is not None
    if status is COMPLETED:
        assert jobs.result(job) is not None


@given(strategies.histories(internal.TYPES, {CANCELLED, COMPLETED}, max_steps=4))
def test_a_walk_ends_in_one_of_the_statuses_asked_for(history: tuple[jobs.Job, Any]) -> None:
    job, now = history
    assert jobs.status(job) in {CANCELLED, COMPLETED}
    assert jobs.updated_at(job) <= now


PICKY = registry.JobType(
    name="picky",
    pipeline=pdf.analyze_pdf,
    retry=retry.RetryPolicy(
        max_attempts=5, classifier=errors.Classifier(permanent=frozenset(strategies.ERROR_CODES))
    ),
)


@given(strategies.jobs_of(PICKY))
def test_failures_on_the_walk_use_the_job_types_own_policy(job: jobs.Job) -> None:
    # PICKY retries no error at all, whatever the performer said: nothing waits for a retry.
    assert not (jobs.status(job) is PENDING and jobs.error(job) is not None)


FREE = registry.JobType(name="free", pipeline=pdf.analyze_pdf)


@given(strategies.drafts(FREE))
def test_a_type_that_accepts_any_params_gets_any_json_object(draft: jobs.Job) -> None:
    params = _frozen.thaw(jobs.params(draft))
    assert json.loads(json.dumps(params)) == params


@given(strategies.drafts(pdf.JOB_TYPE))
def test_drafts_are_what_submission_makes_with_an_input_when_needed(draft: jobs.Job) -> None:
    assert jobs.status_or_none(draft) is None
    source = jobs.input(draft)
    assert source is not None
    assert source.blob == f"inputs/{jobs.id(draft)}/document.pdf"
    assert jobs.params(draft) == {"instructions": pdf.DEFAULT_INSTRUCTIONS}


INSTRUCTIONS = st.fixed_dictionaries({"instructions": st.text(min_size=1).filter(str.strip)})


@given(strategies.drafts(pdf.JOB_TYPE, params=INSTRUCTIONS))
def test_drafts_take_params_from_the_strategy_given(draft: jobs.Job) -> None:
    assert set(jobs.params(draft)) == {"instructions"}


@given(data=st.data())
def test_a_params_strategy_the_type_refuses_is_named(data: st.DataObject) -> None:
    refused = strategies.drafts(pdf.JOB_TYPE, params=st.just({"pages": 3}))
    with pytest.raises(ValueError, match=r"pdf-analysis refuses a drawn submission .*params/pages"):
        data.draw(refused)


@given(data=st.data())
def test_submissions_are_accepted_by_submission(data: st.DataObject) -> None:
    now = data.draw(strategies.utc_datetimes())
    request = data.draw(strategies.submissions(internal.TYPES, now))
    made = submission.new_job(
        request,
        types=internal.TYPES,
        job_id="job-1",
        user_id="u",
        now=now,
        input=jobs.Input(blob="inputs/job-1/document.pdf", content_type="application/pdf"),
    )
    assert isinstance(made, Success)
    assert json.loads(json.dumps(request)) == request


# -- errors ------------------------------------------------------------------------------


@given(internal.classifiers(), st.data())
def test_transient_and_permanent_errors_are_classified_so(
    classifier: errors.Classifier, data: st.DataObject
) -> None:
    assert errors.classify(data.draw(strategies.transient_errors(classifier)), classifier)
    assert not errors.classify(data.draw(strategies.permanent_errors(classifier)), classifier)


# -- effect outcomes ---------------------------------------------------------------------

CONTRACT: dict[type, type] = {
    effects.StatBlob: effects.BlobInfo,
    effects.ReadBlob: bytes,
    effects.WriteBlob: effects.BlobInfo,
    effects.DeleteBlob: type(None),
    effects.Analyze: effects.Analysis,
    effects.ReportProgress: type(None),
}


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: type(e).__name__)
@given(data=st.data())
def test_outcomes_fit_each_effects_contract(
    effect: effects.PipelineEffect, data: st.DataObject
) -> None:
    match data.draw(strategies.outcomes(effect)):
        case Success(value):
            assert isinstance(value, CONTRACT[type(effect)])
            if isinstance(value, effects.BlobInfo):
                assert value.key == getattr(effect, "key", None)
        case Failure(err):
            assert isinstance(err, errors.Error)
            assert not isinstance(effect, effects.ReportProgress)  # progress never fails


def test_every_effect_type_has_a_default_success() -> None:
    assert set(strategies.DEFAULT_VALUES) == set(harness.EFFECT_TYPES) == set(CONTRACT)


@given(data=st.data())
def test_values_override_the_defaults_per_effect_type(data: st.DataObject) -> None:
    texts = {effects.ReadBlob: st.just(b"override")}
    assert data.draw(strategies.successes(effects.ReadBlob(key="k"), texts)) == b"override"
    keyed = {effects.ReadBlob: lambda e: st.just(e.key.encode())}
    assert data.draw(strategies.successes(effects.ReadBlob(key="k"), keyed)) == b"k"


@given(strategies.responders(failures=st.just(errors.permanent("boom", "no"))))
def test_a_responder_answers_each_effect_as_it_is_asked(respond: strategies.Responder) -> None:
    for effect in EFFECTS:
        match respond(effect):
            case Success(value):
                assert isinstance(value, CONTRACT[type(effect)])
            case Failure(err):
                assert err == errors.permanent("boom", "no")
    assert "drawn one by one" in repr(respond)


# -- faults ------------------------------------------------------------------------------


@given(strategies.fault_schedules(max_faults=4))
def test_fault_schedules_stay_within_their_bounds(schedule: tuple[harness.Fault, ...]) -> None:
    assert len(schedule) <= 4
    for fault in schedule:
        assert fault.at in strategies.FALLIBLE or fault.at in range(9)
        assert fault.attempt is None or 1 <= fault.attempt <= 3
        assert isinstance(fault.error, errors.Error)


@given(
    strategies.faults(
        kinds=[effects.Analyze],
        max_position=0,
        attempts=st.just(2),
        failures=strategies.transient_errors(),
    )
)
def test_faults_take_their_targets_attempts_and_errors_from_the_caller(
    fault: harness.Fault,
) -> None:
    assert fault.at in (0, effects.Analyze)
    assert fault.attempt == 2
    assert errors.classify(fault.error)
