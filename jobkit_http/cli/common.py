"""What the `jobkit` commands share: one-line failures, settings from the environment and
flags, and local tokens."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from jobkit import errors


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
        "log_format": getattr(args, "log_format", None),
        "log_level": getattr(args, "log_level", None),
        "metrics_port": getattr(args, "metrics_port", None),
    }
    if getattr(args, "no_worker", False):
        overrides["worker"] = False
    if getattr(args, "concurrency", None):
        overrides["concurrency"] = args.concurrency
    try:
        return settings.from_env(os.environ, **overrides)
    except errors.ConfigurationError as exc:
        fail(str(exc))


def local_token(config: Any, user: str, ttl: int = 24 * 3600) -> str:
    from jobkit_http import keys

    try:
        return keys.issue_token(config.data, user, ttl_seconds=ttl, now=datetime.now(UTC))
    except ValueError as exc:
        fail(str(exc))
