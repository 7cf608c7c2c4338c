"""The route table: every endpoint in one list, which the OpenAPI document must match."""

from __future__ import annotations

from starlette.routing import Route

from jobkit_http import api, metrics, openapi

P = api.PREFIX

ROUTES = [
    Route(f"{P}/jobs", api.create_job, methods=["POST"], name="create_job"),
    Route(f"{P}/jobs", api.list_jobs, methods=["GET"], name="list_jobs"),
    Route(f"{P}/pdf-processing", api.create_pdf_job, methods=["POST"], name="create_pdf_job"),
    Route(f"{P}/jobs/{{job_id}}", api.get_job, methods=["GET"], name="get_job"),
    Route(f"{P}/jobs/{{job_id}}", api.cancel_job, methods=["DELETE"], name="cancel_job"),
    Route(f"{P}/jobs/{{job_id}}/retry", api.retry_job, methods=["PUT"], name="retry_job"),
    Route(f"{P}/jobs/{{job_id}}/status", api.get_status, methods=["GET"], name="get_status"),
    Route(f"{P}/jobs/{{job_id}}/result", api.get_result, methods=["GET"], name="get_result"),
    Route(
        f"{P}/jobs/{{job_id}}/record", api.delete_record, methods=["DELETE"], name="delete_record"
    ),
    Route("/healthz", api.healthz, methods=["GET"], name="healthz"),
    Route("/readyz", api.readyz, methods=["GET"], name="readyz"),
    Route("/metrics", metrics.endpoint, methods=["GET"], name="metrics"),
    Route("/openapi.json", openapi.endpoint, methods=["GET"], name="openapi"),
]
