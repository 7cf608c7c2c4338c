"""Log output: one JSON object per line in the shape Google Cloud Logging reads, or a
readable line for a terminal; every line with the fields of its context (request, user,
job, worker: `jobkit.worker.journal`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from jobkit.worker import journal

# The attributes every `LogRecord` has: anything else on a record came from `extra=` or the
# context, and is a field of the line.
_STANDARD: Final = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_HIDDEN: Final = {"color_message"}  # uvicorn's copy of its message with terminal colours
SEVERITY: Final = {"WARN": "WARNING", "CRITICAL": "CRITICAL", "FATAL": "CRITICAL"}
TRACE: Final = "logging.googleapis.com/trace"
SPAN: Final = "logging.googleapis.com/spanId"
SAMPLED: Final = "logging.googleapis.com/trace_sampled"
SOURCE: Final = "logging.googleapis.com/sourceLocation"
# Libraries whose INFO lines are noise here: httpx logs every request a client makes (the
# demo's own, the JWKS fetches, which `keys` logs itself); uvicorn's lifecycle lines are
# replaced by the service's own, its access log by `access`.
QUIET: Final = ("httpx", "httpcore", "uvicorn.error", "multipart")


class ContextFilter(logging.Filter):
    """Adds the bound context's fields to each record (what `extra=` gave wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in journal.context().items():
            if key not in record.__dict__:
                record.__dict__[key] = value
        return True


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields: its `extra=` and its context."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and key not in _HIDDEN and value is not None
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `severity`, `message`, `time`, `logger`, the trace (as Cloud
    Logging links it to the request's trace), the source location of warnings and errors,
    the stack of an exception (`stack_trace`, as Error Reporting reads it), then the fields."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": SEVERITY.get(record.levelname, record.levelname),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
        }
        extra = fields(record)
        trace = extra.pop("trace", None)
        if trace is not None:
            entry[TRACE] = f"projects/{self.project}/traces/{trace}" if self.project else trace
            span = extra.pop("spanId", None)
            if span is not None:
                entry[SPAN] = span
            sampled = extra.pop("traceSampled", None)
            if sampled is not None:
                entry[SAMPLED] = sampled
        if record.levelno >= logging.WARNING:
            entry[SOURCE] = {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            }
        entry.update(extra)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# Fields a terminal line shows first, in this order, and those it leaves out (too big for a
# line, or said by the message already).
_FIRST: Final[tuple[str, ...]] = ("jobId", "userId", "jobType", "queue", "attempt")
_LEFT_OUT: Final = {
    "httpRequest",
    "event",
    "status",
    "method",
    "route",
    "path",
    "requestId",
    "workerId",
    "seconds",
    "trace",
    "spanId",
    "traceSampled",
}
_COLOURS: Final = {
    "DEBUG": "\033[2m",
    "INFO": "\033[32m",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
    "CRITICAL": "\033[1;31m",
}
_DIM, _RESET = "\033[2m", "\033[0m"


class TextFormatter(logging.Formatter):
    """`12:00:01.234 INFO  job completed in 0.41 s  jobId=… jobType=pdf-analysis`: the
    time, the level, the message, then the fields (coloured on a terminal)."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        level = record.levelname
        extra = fields(record)
        ordered = [key for key in _FIRST if key in extra]
        ordered += sorted(key for key in extra if key not in _FIRST and key not in _LEFT_OUT)
        shown = " ".join(f"{key}={_text(extra[key])}" for key in ordered)
        if self.colour:
            line = f"{_DIM}{moment}{_RESET} {_COLOURS.get(level, '')}{level:<7}{_RESET} "
            line += record.getMessage() + (f"  {_DIM}{shown}{_RESET}" if shown else "")
        else:
            line = f"{moment} {level:<7} {record.getMessage()}" + (f"  {shown}" if shown else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def formatter(fmt: str, stream: TextIO, project: str | None = None) -> logging.Formatter:
    """The formatter `fmt` names; `auto` is text on a terminal, JSON otherwise."""
    terminal = _isatty(stream)
    if fmt == "text" or (fmt == "auto" and terminal):
        return TextFormatter(colour=terminal)
    return JsonFormatter(project)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure(
    level: str, fmt: str, *, stream: TextIO | None = None, project: str | None = None
) -> logging.Handler:
    """Send every log line to `stream` (stdout) at `level` and above, formatted as `fmt`
    says; quiet the libraries whose lines are noise. Returns the handler."""
    out = stream if stream is not None else sys.stdout
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(fmt, out, project))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("uvicorn.access").disabled = True
    return handler
