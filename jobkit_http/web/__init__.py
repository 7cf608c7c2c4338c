"""The web page for people: the jobs list, a job, a new job, signing in; its static files.

Its routes are a table of their own, outside `/api/v1` and deliberately outside the API's
OpenAPI document: they serve the page, which calls the same JSON API as every client.
"""

from __future__ import annotations

from starlette.routing import Route

from jobkit_http.web import site

ROUTES = [
    Route("/", site.jobs_page, methods=["GET"], name="page_jobs"),
    Route("/jobs/{job_id}", site.job_page, methods=["GET"], name="page_job"),
    Route("/new", site.new_page, methods=["GET"], name="page_new"),
    Route("/signin", site.signin_page, methods=["GET"], name="page_signin"),
    Route("/signin/redirect", site.redirect_page, methods=["GET"], name="page_redirect"),
    Route("/signin/local", site.local_signin, methods=["POST"], name="local_signin"),
    Route("/static/{path:path}", site.static, methods=["GET"], name="static"),
]
