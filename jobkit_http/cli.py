"""The `jobkit` command line: serve, worker, token, signin, submit, status, jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import jobkit
from jobkit import errors

SAMPLE = Path(__file__).resolve().parent / "samples" / "sample.pdf"


class CliError(Exception):
    """A failure to report as one line on stderr, with a non-zero exit."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def settings_from(args: argparse.Namespace) -> Any:
    from jobkit_http import settings

    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data": Path(args.data) if getattr(args, "data", None) else None,
        "url": getattr(args, "url", None),
        "token": getattr(args, "token", None),
    }
    if getattr(args, "no_worker", False):
        overrides["worker"] = False
    if getattr(args, "concurrency", None):
        overrides["concurrency"] = args.concurrency
    try:
        return settings.from_env(os.environ, **overrides)
    except errors.ConfigurationError as exc:
        fail(str(exc))


# -- serve and worker ----------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from jobkit.worker.process import tune_process
    from jobkit_http import logs, sse
    from jobkit_http.app import create_app

    config = settings_from(args)
    logs.configure(config.log_level, config.log_format)
    try:
        app = create_app(config)
    except errors.ConfigurationError as exc:
        fail(str(exc))
    tune_process()  # a long-running process, its worker and store writer alike
    base = _base_url(config)
    print(
        f"jobkit {jobkit.__version__}: serving on {base}"
        f" (data in {config.data}, auth {config.auth})",
        file=sys.stderr,
    )
    if config.auth == "local" and config.web:
        link = _signin_link(config, base, args.user)
        if args.demo:
            rule = "=" * min(len(link), 100)
            lifetime = f"{config.signin_seconds:g} s"
            print(
                f"\n{rule}\nOpen the web page, signed in as {args.user}:\n\n  {link}\n\n"
                f"(it works once, within {lifetime}; `jobkit signin` makes another)\n{rule}\n",
                file=sys.stderr,
            )
        else:
            print(f"sign in to the web page as {args.user} (once): {link}", file=sys.stderr)
    if args.demo:
        import threading

        threading.Thread(target=_demo, args=(config, args.user), daemon=True).start()
    server = sse.Server(
        uvicorn.Config(app, host=config.host, port=config.port, log_config=None, access_log=False),
        app.state.streams.stop,
    )
    server.run()
    return 0


def _base_url(config: Any) -> str:
    """Where a browser on this machine reaches `serve`."""
    host = "127.0.0.1" if config.host in {"0.0.0.0", "::", ""} else config.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.port}"


def _signin_link(config: Any, base: str, user: str) -> str:
    from jobkit_http.web import signin

    try:
        code = signin.mint(
            config.data, user, now=datetime.now(UTC), ttl_seconds=config.signin_seconds
        )
    except ValueError as exc:
        fail(str(exc))
    return signin.link(base, code)


def signin_link(args: argparse.Namespace) -> int:
    config = settings_from(args)
    if config.auth != "local":
        fail("sign-in links are for local mode; with Entra ID, sign in on the web page")
    print(_signin_link(config, config.url, args.user))
    return 0


def _demo(config: Any, user: str) -> None:
    """Once the server answers, process the sample PDF through the real API, as a user would."""
    import httpx

    base = f"http://{config.host}:{config.port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    token = _local_token(config, user)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            job_id = _upload(http, SAMPLE, {"instructions": "Summarise the document."})
            print(f"demo: submitted {SAMPLE.name} as job {job_id}", file=sys.stderr)
            result = _follow(http, job_id)
        pages = result.get("document", {}).get("pages")
        print(
            f"demo: completed: {pages} pages analysed;"
            f" result at {base}/api/v1/jobs/{job_id}/result",
            file=sys.stderr,
        )
        print(
            f"demo: see it at {_base_url(config)}/jobs/{job_id} (sign in with the link above),"
            f" or try `jobkit status {job_id}` or `jobkit jobs`",
            file=sys.stderr,
        )
    except CliError as exc:
        print(f"demo: failed: {exc}", file=sys.stderr)


def worker(args: argparse.Namespace) -> int:
    from jobkit_http import logs

    config = settings_from(args)
    logs.configure(config.log_level, config.log_format)
    asyncio.run(_run_worker(config))
    return 0


async def _run_worker(config: Any) -> None:
    from jobkit import plugins
    from jobkit.local import Runtime
    from jobkit.worker.process import run_until_signalled
    from jobkit_http import analyzers
    from jobkit_http.app import worker_config
    from jobkit_http.metrics import Metrics

    types = analyzers.job_types(config, plugins.discover())
    async with Runtime(config.data, types=types, synchronous=config.sqlite_synchronous) as runtime:
        try:
            runtime.analyzer = analyzers.build(
                config, runtime.blobs, Metrics().on_effect, runtime.clock
            )
        except errors.ConfigurationError as exc:
            fail(str(exc))
        print(f"jobkit worker: taking jobs from {config.data}", file=sys.stderr)
        try:
            await run_until_signalled(runtime.worker(worker_config(config)))
        finally:
            await analyzers.close(runtime.analyzer)


# -- tokens --------------------------------------------------------------------------------


def _local_token(config: Any, user: str, ttl: int = 24 * 3600) -> str:
    from jobkit_http import keys

    try:
        return keys.issue_token(config.data, user, ttl_seconds=ttl, now=datetime.now(UTC))
    except ValueError as exc:
        fail(str(exc))


def token(args: argparse.Namespace) -> int:
    config = settings_from(args)
    if config.auth != "local":
        fail("tokens are minted only in local mode; with Entra ID, sign in through your tenant")
    print(_local_token(config, args.user, args.ttl))
    return 0


# -- client commands ----------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Any:
    import httpx

    config = settings_from(args)
    bearer = config.token
    if bearer is None:
        if config.auth != "local":
            fail("no token: set JOBKIT_TOKEN or pass --token")
        bearer = _local_token(config, args.user)
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
    fail(f"{response.status_code} {detail}" + (f" ({fields})" if fields else ""))


def _request(http: Any, method: str, url: str, **kwargs: Any) -> Any:
    import httpx

    try:
        return http.request(method, url, **kwargs)
    except httpx.ConnectError:
        fail(f"cannot reach {http.base_url}: is `jobkit serve` running? (JOBKIT_URL)")
    except httpx.HTTPError as exc:
        fail(f"request to {http.base_url} failed: {exc}")


def _upload(http: Any, path: Path, fields: dict[str, str]) -> str:
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


def _follow(http: Any, job_id: str) -> Any:
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
    with _client(args) as http:
        job_id = _upload(http, path, fields)
        if not args.wait:
            print(job_id)
            return 0
        print(f"submitted {path.name} as job {job_id}", file=sys.stderr)
        print(json.dumps(_follow(http, job_id), indent=2, ensure_ascii=False))
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


# -- the parser --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="jobkit", description="Asynchronous job processing on a functional core."
    )
    root.add_argument("--version", action="version", version=f"jobkit {jobkit.__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND")

    def data(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="data folder (JOBKIT_DATA, default ./jobkit-data)")

    def client(p: argparse.ArgumentParser) -> None:
        data(p)
        p.add_argument("--url", help="the service (JOBKIT_URL, default http://127.0.0.1:8000)")
        p.add_argument("--token", help="bearer token (JOBKIT_TOKEN); in local mode one is minted")
        p.add_argument(
            "--user", default=os.environ.get("USER", "local"), help="user for a minted local token"
        )

    p = commands.add_parser("serve", help="run the API and a worker on the embedded default")
    data(p)
    p.add_argument("--host", help="listen address (JOBKIT_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (JOBKIT_PORT, default 8000)")
    p.add_argument("--no-worker", action="store_true", help="API only; run `jobkit worker` apart")
    p.add_argument(
        "--demo", action="store_true", help="once up, process the bundled sample PDF end to end"
    )
    p.add_argument(
        "--user",
        default=os.environ.get("USER", "local"),
        help="local mode: the user of the printed sign-in link (and of the demo's job)",
    )
    p.set_defaults(run=serve)

    p = commands.add_parser("worker", help="run a worker alone")
    data(p)
    p.add_argument("--concurrency", type=int, help="jobs at once (JOBKIT_CONCURRENCY)")
    p.set_defaults(run=worker)

    p = commands.add_parser("token", help="print a local bearer token for a user")
    data(p)
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds (default a day)")
    p.set_defaults(run=token)

    p = commands.add_parser("signin", help="print a one-time sign-in link to the web page")
    data(p)
    p.add_argument("--url", help="the service (JOBKIT_URL, default http://127.0.0.1:8000)")
    p.add_argument("--user", default=os.environ.get("USER", "local"), help="who signs in")
    p.set_defaults(run=signin_link)

    p = commands.add_parser("submit", help="upload a PDF for analysis")
    client(p)
    p.add_argument("file")
    p.add_argument(
        "--wait", action="store_true", help="follow the job, showing progress, and print its result"
    )
    p.add_argument("--instructions")
    p.add_argument("--priority", type=int)
    p.add_argument("--queue")
    p.add_argument("--delay", type=float, help="seconds before it may run")
    p.set_defaults(run=submit)

    p = commands.add_parser("status", help="show a job's status")
    client(p)
    p.add_argument("id")
    p.set_defaults(run=status)

    p = commands.add_parser("jobs", help="list your jobs, newest first")
    client(p)
    p.add_argument("--status", help="comma-separated statuses")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=list_jobs)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 0
    try:
        code: int = args.run(args)
        return code
    except CliError as exc:
        print(f"jobkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
