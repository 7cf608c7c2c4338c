"""The two shapes of a log line (JSON for Cloud Logging, text for a terminal), which one `auto`
picks, and the trace a request carries."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from jobkit.worker import journal
from jobkit_http import access, logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("jobkit.jobs").makeRecord(
        "jobkit.jobs", level, __file__, 42, "job %s", ("completed",), None, extra=extra
    )
    logs.ContextFilter().filter(made)
    return made


def test_json_lines_carry_severity_message_time_trace_and_the_fields() -> None:
    with journal.bind(requestId="r-1", trace="a" * 32, spanId="b" * 16, traceSampled=True):
        made = record(logging.WARNING, jobId="j-1", attempt=2, empty=None)
    line = json.loads(logs.JsonFormatter(project="my-project").format(made))
    assert line["severity"] == "WARNING"
    assert line["message"] == "job completed"
    assert line["time"].endswith("+00:00")
    assert line[logs.TRACE] == f"projects/my-project/traces/{'a' * 32}"
    assert (line[logs.SPAN], line[logs.SAMPLED]) == ("b" * 16, True)
    assert line[logs.SOURCE]["line"] == "42"
    assert (line["requestId"], line["jobId"], line["attempt"]) == ("r-1", "j-1", 2)
    assert "empty" not in line
    assert "trace" not in line
    bare = json.loads(logs.JsonFormatter().format(record(trace="c" * 32)))
    assert bare[logs.TRACE] == "c" * 32  # no project: the bare trace id
    assert logs.SOURCE not in bare  # INFO lines leave the source out


def test_an_exception_s_stack_is_in_stack_trace() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = json.loads(logs.JsonFormatter().format(made))
    assert line["severity"] == "ERROR"
    assert "ValueError: boom" in line["stack_trace"]


def test_a_text_line_is_time_level_message_then_the_job_s_fields_first() -> None:
    made = record(jobId="j-1", userId="alice", event="completed", note="two words", seconds=0.5)
    text = logs.TextFormatter().format(made)
    moment, level, rest = text.split(None, 2)
    assert len(moment) == len("12:00:01.234")
    assert level == "INFO"
    assert rest == 'job completed  jobId=j-1 userId=alice note="two words"'


@pytest.mark.parametrize(
    ("setting", "stream", "shape"),
    [
        ("auto", Terminal(), logs.TextFormatter),
        ("auto", io.StringIO(), logs.JsonFormatter),
        ("json", Terminal(), logs.JsonFormatter),
        ("text", io.StringIO(), logs.TextFormatter),
    ],
)
def test_auto_is_text_on_a_terminal_and_json_elsewhere(
    setting: str, stream: io.StringIO, shape: type[logging.Formatter]
) -> None:
    assert type(logs.formatter(setting, stream)) is shape


@pytest.mark.parametrize(
    ("headers", "trace"),
    [
        (
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            {
                "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
                "spanId": "00f067aa0ba902b7",
                "traceSampled": True,
            },
        ),
        (
            {"x-cloud-trace-context": "105445AA7843BC8BF206B12000100000/1;o=1"},
            {
                "trace": "105445aa7843bc8bf206b12000100000",
                "spanId": "0000000000000001",
                "traceSampled": True,
            },
        ),
        (
            {"x-cloud-trace-context": "105445aa7843bc8bf206b12000100000"},
            {"trace": "105445aa7843bc8bf206b12000100000"},
        ),
        ({"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, {}),
        ({"traceparent": "garbage"}, {}),
        ({}, {}),
    ],
)
def test_the_trace_comes_from_traceparent_or_cloud_trace_context(
    headers: dict[str, str], trace: dict[str, object]
) -> None:
    assert access.trace_of(headers) == trace
