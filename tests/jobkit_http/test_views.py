"""What the API shows of a job: its document less the operators' fields, plus links."""

from __future__ import annotations

from typing import Any

from hypothesis import given

from jobkit import documents, instants, jobs
from jobkit_http import views
from tests.jobkit import strategies
from tests.jobkit.jobs_support import RESULT_KEY, completed_on_second_attempt


def test_a_completed_job_shows_its_result_link_and_no_internals() -> None:
    job = completed_on_second_attempt()
    view = views.job_view(job)
    assert list(view) == list(views.FIELDS)
    assert view["resultUrl"] == "/api/v1/jobs/job-1/result"
    assert view["links"] == {
        "jobUrl": "/api/v1/jobs/job-1",
        "statusUrl": "/api/v1/jobs/job-1/status",
        "resultUrl": "/api/v1/jobs/job-1/result",
    }
    assert view["input"] == {"filename": "a.pdf", "size": 9, "contentType": "application/pdf"}
    assert [set(entry) for entry in view["history"]] == [set(views.ENTRY_KEYS)] * 2
    assert "leaseOwner" not in view
    assert "turn" not in view  # a scheduling detail, not a promise
    assert RESULT_KEY not in repr(view)
    assert "w1" not in repr(view["history"])  # no worker names (hosts, process ids)


def _private_free(view: dict[str, Any]) -> None:
    assert not views.PRIVATE & set(view)
    assert all(not views.PRIVATE_IN_ENTRIES & set(entry) for entry in view["history"])
    assert view["input"] is None or not views.PRIVATE_IN_INPUT & set(view["input"])
    idem = view["idempotency"]
    assert idem is None or not views.PRIVATE_IN_IDEMPOTENCY & set(idem)


@given(strategies.submitted_jobs())
def test_the_view_is_the_document_less_private_fields_plus_links(job: jobs.Job) -> None:
    view = views.job_view(job)
    document = documents.to_document(job)
    _private_free(view)
    for key in views.FIELDS:
        if key in ("resultUrl", "links"):
            continue
        shown, stored = view[key], document[key]
        if key == "history":
            assert [e | {k: d[k] for k in views.PRIVATE_IN_ENTRIES} for e, d in zip(
                shown, stored, strict=True
            )] == stored  # fmt: skip
        elif key == "input" and stored is not None:
            assert shown == {k: v for k, v in stored.items() if k not in views.PRIVATE_IN_INPUT}
        elif key == "idempotency" and stored is not None:
            assert shown == {k: v for k, v in stored.items() if k != "fingerprint"}
        else:
            assert shown == stored
    found = jobs.result_key(job)
    assert view["resultUrl"] == (None if found is None else view["links"]["resultUrl"])


@given(strategies.submitted_jobs())
def test_the_status_is_a_projection_of_the_view(job: jobs.Job) -> None:
    view, status = views.job_view(job), views.status_view(job)
    assert list(status) == list(views.STATUS_FIELDS)
    for key in views.STATUS_FIELDS:
        if key == "nextRunAt":
            expected = view["runAt"] if view["status"] == "pending" else None
            assert status[key] == expected
            assert status[key] == instants.format_or_none(jobs.next_run_at(job))
        else:
            assert status[key] == view[key], key
