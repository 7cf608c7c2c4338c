"""The `jobkit` command line: serve, worker, token, signin, submit, status, jobs.

Each command imports its heavy dependencies when it runs, so `jobkit --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import jobkit
from jobkit_http.cli import client, server
from jobkit_http.cli.common import CliError

__all__ = ["main", "parser"]


def _data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data folder (JOBKIT_DATA, default ./jobkit-data)")


def _logged(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        help="log lines as JSON or text; auto: text on a terminal (JOBKIT_LOG_FORMAT)",
    )
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the least severe lines logged (JOBKIT_LOG_LEVEL, default INFO)",
    )


def _as_client(p: argparse.ArgumentParser) -> None:
    _data(p)
    p.add_argument("--url", help="the service (JOBKIT_URL, default http://127.0.0.1:8000)")
    p.add_argument("--token", help="bearer token (JOBKIT_TOKEN); in local mode one is minted")
    p.add_argument(
        "--user", default=os.environ.get("USER", "local"), help="user for a minted local token"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="jobkit", description="Asynchronous job processing on a functional core."
    )
    root.add_argument("--version", action="version", version=f"jobkit {jobkit.__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    _service_commands(commands)
    _client_commands(commands)
    return root


def _service_commands(commands: Any) -> None:
    p = commands.add_parser("serve", help="run the API and a worker on the embedded default")
    _data(p)
    _logged(p)
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
    p.set_defaults(run=server.serve)

    p = commands.add_parser("worker", help="run a worker alone")
    _data(p)
    _logged(p)
    p.add_argument("--concurrency", type=int, help="jobs at once (JOBKIT_CONCURRENCY)")
    p.add_argument(
        "--metrics-port",
        type=int,
        help="port of its /metrics; 0 for none (JOBKIT_METRICS_PORT, default 9464)",
    )
    p.set_defaults(run=server.worker)

    p = commands.add_parser("signin", help="print a one-time sign-in link to the web page")
    _data(p)
    p.add_argument("--url", help="the service (JOBKIT_URL, default http://127.0.0.1:8000)")
    p.add_argument("--user", default=os.environ.get("USER", "local"), help="who signs in")
    p.set_defaults(run=server.signin_link)


def _client_commands(commands: Any) -> None:
    p = commands.add_parser("token", help="print a local bearer token for a user")
    _data(p)
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds (default a day)")
    p.set_defaults(run=client.token)

    p = commands.add_parser("submit", help="upload a PDF for analysis")
    _as_client(p)
    p.add_argument("file")
    p.add_argument(
        "--wait", action="store_true", help="follow the job, showing progress, and print its result"
    )
    p.add_argument("--instructions")
    p.add_argument("--priority", type=int)
    p.add_argument("--queue")
    p.add_argument("--delay", type=float, help="seconds before it may run")
    p.add_argument(
        "--direct",
        action="store_true",
        help="upload to a signed URL, then submit the job (automatic above"
        " JOBKIT_DIRECT_UPLOAD_ABOVE, 30 MiB)",
    )
    p.set_defaults(run=client.submit)

    p = commands.add_parser("status", help="show a job's status")
    _as_client(p)
    p.add_argument("id")
    p.set_defaults(run=client.status)

    p = commands.add_parser("jobs", help="list your jobs, newest first")
    _as_client(p)
    p.add_argument("--status", help="comma-separated statuses")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=client.list_jobs)


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
