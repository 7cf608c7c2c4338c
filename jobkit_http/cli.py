"""The `jobkit` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jobkit

PLANNED = {
    "serve": "run the API and a worker on the embedded default (SQLite, a folder, offline PDFs)",
    "worker": "run a worker alone",
    "token": "print a local bearer token for a user",
    "submit": "upload a PDF and, with --wait, follow it to its result",
    "status": "show a job's status",
    "jobs": "list your jobs",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jobkit",
        description="Asynchronous job processing on a functional core.",
        epilog="Commands still to come: " + "; ".join(f"{k} ({v})" for k, v in PLANNED.items()),
    )
    parser.add_argument("--version", action="version", version=f"jobkit {jobkit.__version__}")
    parser.add_argument("command", nargs="?", help="one of: " + ", ".join(PLANNED))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in PLANNED:
        print(f"jobkit: '{args.command}' is not available yet in this version", file=sys.stderr)
        return 2
    print(f"jobkit: unknown command {args.command!r}; see 'jobkit --help'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
