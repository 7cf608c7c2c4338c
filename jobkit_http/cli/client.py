"""The commands that call the API as a user does: `token`, `submit`, `status`, `jobs`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jobkit_http.cli.common import CliError, fail, local_token, settings_from


def token(args: argparse.Namespace) -> int:
    config = settings_from(args)
    if config.auth != "local":
        fail("tokens are minted only in local mode; with Entra ID, sign in through your tenant")
    print(local_token(config, args.user, args.ttl))
    return 0


def _client(args: argparse.Namespace) -> Any:
    import httpx

    config = settings_from(args)
    bearer = config.token
    if bearer is None:
        if config.auth != "local":
            fail("no token: set JOBKIT_TOKEN or pass --token")
        bearer = local_token(config, args.user)
    return httpx.Client(
        base_url=config.url, headers={"Authorization": f"Bearer {bearer}"}, timeout=60
    )


def _answer(response: Any, expected: int = 200) -> Any:
    if response.status_code == expected:
        return response.json() if response.content else None
    try:
        problem = response.json()
        detail = problem.get("detail", response.text)
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in problem.get("errors", []))
    except ValueError:
        detail, fields = response.text.strip(), ""
    raise CliError(f"{response.status_code} {detail}" + (f" ({fields})" if fields else ""))


def _request(http: Any, method: str, url: str, **kwargs: Any) -> Any:
    import httpx

    try:
        return http.request(method, url, **kwargs)
    except httpx.ConnectError:
        fail(f"cannot reach {http.base_url}: is `jobkit serve` running? (JOBKIT_URL)")
    except httpx.HTTPError as exc:
        fail(f"request to {http.base_url} failed: {exc}")


def upload(http: Any, path: Path, fields: dict[str, str]) -> str:
    try:
        handle = path.open("rb")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    with handle:
        files = {"file": (path.name, handle, "application/pdf")}
        answer = _answer(
            _request(http, "POST", "/api/v1/pdf-processing", files=files, data=fields), 202
        )
    job_id: str = answer["id"]
    return job_id


def upload_direct(http: Any, path: Path, fields: dict[str, str]) -> str:
    """Ask for a signed URL, PUT the file there (without the bearer token: the URL is the
    permission), then submit the job naming the upload."""
    import httpx

    size = path.stat().st_size
    answer = _answer(_request(http, "POST", "/api/v1/uploads", json={"size": size}), 201)
    try:
        with path.open("rb") as handle, httpx.Client(timeout=600) as plain:
            stored = plain.request(
                answer["method"], answer["url"], headers=answer["headers"], content=handle
            )
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except httpx.HTTPError as exc:
        fail(f"the upload to the signed URL failed: {exc}")
    if stored.status_code not in {200, 201}:
        _answer(stored, 201)
    request: dict[str, Any] = {
        "type": "pdf-analysis",
        "input": {"upload": answer["upload"], "filename": path.name},
        "params": {}
        if fields.get("instructions") is None
        else {"instructions": fields["instructions"]},
    }
    for name in ("priority", "delaySeconds"):
        if name in fields:
            request[name] = float(fields[name]) if name == "delaySeconds" else int(fields[name])
    if "queue" in fields:
        request["queue"] = fields["queue"]
    job = _answer(_request(http, "POST", "/api/v1/jobs", json=request), 202)
    job_id: str = job["id"]
    return job_id


def follow(http: Any, job_id: str) -> Any:
    """Long-poll the status, showing progress, until the job finishes; the result on success."""
    etag = None
    shown = ""
    while True:
        headers: dict[str, str] = {"If-None-Match": etag} if etag else {}
        response = _request(
            http, "GET", f"/api/v1/jobs/{job_id}/status", params={"wait": 25}, headers=headers
        )
        if response.status_code != 304:
            state = _answer(response)
            etag = response.headers.get("etag")
            line = _progress_line(state)
            if line != shown:
                print(line, file=sys.stderr)
                shown = line
            if state["status"] == "completed":
                return _answer(_request(http, "GET", f"/api/v1/jobs/{job_id}/result"))
            if state["status"] in {"failed", "cancelled"}:
                error = state.get("error") or {}
                fail(
                    f"job {job_id} {state['status']}:"
                    f" {error.get('code', '')} {error.get('message', '')}".strip()
                )


def _progress_line(state: dict[str, Any]) -> str:
    progress = state.get("progress") or {}
    line = f"{state['status']}"
    if progress.get("total"):
        percent = 100 * progress["current"] // progress["total"]
        done = f"{progress['current']}/{progress['total']} ({percent}%)"
        line += f"  {done} {progress.get('message', '')}"
    if state["status"] == "pending" and state.get("attempts"):
        line += f"  retry {state['attempts'] + 1} at {state.get('nextRunAt')}"
    return line.rstrip()


def submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        fail(f"no such file: {path}")
    fields = {
        name: str(value)
        for name, value in {
            "instructions": args.instructions,
            "priority": args.priority,
            "queue": args.queue,
            "delaySeconds": args.delay,
        }.items()
        if value is not None
    }
    direct = args.direct or path.stat().st_size > settings_from(args).direct_upload_above
    with _client(args) as http:
        job_id = (upload_direct if direct else upload)(http, path, fields)
        if not args.wait:
            print(job_id)
            return 0
        print(f"submitted {path.name} as job {job_id}", file=sys.stderr)
        print(json.dumps(follow(http, job_id), indent=2, ensure_ascii=False))
    return 0


def status(args: argparse.Namespace) -> int:
    with _client(args) as http:
        state = _answer(_request(http, "GET", f"/api/v1/jobs/{args.id}/status"))
    print(json.dumps(state, indent=2))
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    with _client(args) as http:
        page = _answer(_request(http, "GET", "/api/v1/jobs", params=params))
    rows = page["jobs"]
    if not rows:
        print("no jobs", file=sys.stderr)
    for job in rows:
        print(
            f"{job['id']}  {job['status']:<10}  {job['type']:<14}  {job['createdAt']}"
            f"  attempts {job['attempts']}/{job['maxAttempts']}"
        )
    if page.get("nextCursor"):
        print("(more: raise --limit)", file=sys.stderr)
    return 0
