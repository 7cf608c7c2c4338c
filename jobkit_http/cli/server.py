"""`jobkit serve`, `jobkit worker` and `jobkit signin`: running the service and its workers."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jobkit
from jobkit import errors
from jobkit_http.cli import client
from jobkit_http.cli.common import CliError, fail, local_token, settings_from

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample.pdf"


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from jobkit.worker.process import tune_process
    from jobkit_http import backends, logs, sse
    from jobkit_http.app import create_app, on_shutdown

    config = settings_from(args)
    logs.configure(config.log_level, config.log_format, project=config.gcp_project)
    asyncio.run(_check_backend(config))
    try:
        app = create_app(config)
    except errors.ConfigurationError as exc:
        fail(str(exc))
    tune_process()  # a long-running process, its worker and store writer alike
    base = _base_url(config)
    print(
        f"jobkit {jobkit.__version__}: serving on {base}"
        f" ({backends.describe(config)}, auth {config.auth})",
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
        on_shutdown(app),
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
    token = local_token(config, user)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            job_id = client.upload(http, SAMPLE, {"instructions": "Summarise the document."})
            print(f"demo: submitted {SAMPLE.name} as job {job_id}", file=sys.stderr)
            result = client.follow(http, job_id)
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


async def _check_backend(config: Any) -> None:
    """Open the chosen backend once and ask it: a wrong setting stops start-up in one line."""
    from jobkit_http import backends

    try:
        async with backends.runtime_for(config) as runtime:
            await backends.verify(runtime, config)
    except errors.ConfigurationError as exc:
        fail(str(exc))


def worker(args: argparse.Namespace) -> int:
    from jobkit_http import logs

    config = settings_from(args)
    logs.configure(config.log_level, config.log_format, project=config.gcp_project)
    asyncio.run(_run_worker(config))
    return 0


async def _run_worker(config: Any) -> None:
    """The worker process: its runtime, metrics served on their own port, the gauges."""
    from jobkit import plugins
    from jobkit.worker.process import run_until_signalled
    from jobkit_http import analyzers, backends
    from jobkit_http import metrics as served
    from jobkit_http.app import document_pool, worker_config
    from jobkit_http.gauges import Gauges

    metrics = served.Metrics(role="worker")
    stop_serving = None
    if config.metrics_port:
        try:
            stop_serving = served.serve(metrics, config.metrics_host, config.metrics_port)
        except OSError as exc:
            fail(
                f"cannot serve metrics on {config.metrics_host}:{config.metrics_port}"
                f" (JOBKIT_METRICS_HOST, JOBKIT_METRICS_PORT): {exc.strerror or exc}"
            )
    try:
        types = analyzers.job_types(config, plugins.discover())
        async with (
            document_pool(config) as pool,
            backends.runtime_for(config, types=types, observer=metrics.on_call) as runtime,
        ):
            await backends.verify(runtime, config)
            runtime.analyzer = analyzers.build(
                config, runtime.blobs, metrics, runtime.clock, pool=pool
            )
            running = runtime.worker(worker_config(config), on_effect=metrics.on_effect)
            metrics.watch([running])
            metrics.prime(served.kinds(runtime.types, config.queues))
            gauges = Gauges(
                store=runtime.store,
                metrics=metrics,
                clock=runtime.clock,
                seconds=config.gauge_seconds,
                types=runtime.types,
                queues=config.queues,
            )
            refresh = asyncio.create_task(gauges.run(), name="jobkit-gauges")
            where = (
                f"; metrics on http://{config.metrics_host}:{config.metrics_port}/metrics"
                if stop_serving
                else ""
            )
            print(
                f"jobkit worker: taking jobs ({backends.describe(config)}){where}",
                file=sys.stderr,
            )
            try:
                await run_until_signalled(running)
            finally:
                refresh.cancel()
                await asyncio.gather(refresh, return_exceptions=True)
                await analyzers.close(runtime.analyzer)
    except errors.ConfigurationError as exc:
        fail(str(exc))
    finally:
        if stop_serving is not None:
            stop_serving()
