"""The route table: every endpoint in one list, which the OpenAPI document must match."""

from __future__ import annotations

from starlette.routing import Route

from jobkit_http import api, metrics, openapi, reads, streams, submit

P = api.PREFIX

ROUTES = [
    # Starlette tries routes in order: the one clients poll comes first.
    Route(f"{P}/jobs/{{job_id}}/status", reads.get_status, methods=["GET"], name="get_status"),
    Route(f"{P}/jobs", submit.create_job, methods=["POST"], name="create_job"),
    Route(f"{P}/jobs", reads.list_jobs, methods=["GET"], name="list_jobs"),
    Route(f"{P}/pdf-processing", submit.create_pdf_job, methods=["POST"], name="create_pdf_job"),
    Route(f"{P}/jobs/{{job_id}}", reads.get_job, methods=["GET"], name="get_job"),
    Route(f"{P}/jobs/{{job_id}}", api.cancel_job, methods=["DELETE"], name="cancel_job"),
    Route(f"{P}/jobs/{{job_id}}/retry", api.retry_job, methods=["PUT"], name="retry_job"),
    Route(f"{P}/jobs/{{job_id}}/result", reads.get_result, methods=["GET"], name="get_result"),
    Route(
        f"{P}/jobs/{{job_id}}/record", api.delete_record, methods=["DELETE"], name="delete_record"
    ),
    Route(f"{P}/jobs/{{job_id}}/events", streams.job_events, methods=["GET"], name="job_events"),
    Route(f"{P}/events", streams.user_events, methods=["GET"], name="user_events"),
    Route("/healthz", api.healthz, methods=["GET"], name="healthz"),
    Route("/readyz", api.readyz, methods=["GET"], name="readyz"),
    Route("/metrics", metrics.endpoint, methods=["GET"], name="metrics"),
    Route("/openapi.json", openapi.endpoint, methods=["GET"], name="openapi"),
]
