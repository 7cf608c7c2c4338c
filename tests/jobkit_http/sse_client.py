"""A small Server-Sent Events reader for the tests: the events, comments and `retry:` of a
`text/event-stream` response, read as far as a test asks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import httpx


@attrs.frozen
class Event:
    id: str | None
    name: str
    data: Any


@attrs.define
class Stream:
    """What a client has read of one stream so far."""

    lines: Iterator[str]
    events: list[Event] = attrs.Factory(list)
    comments: int = 0
    retry: int | None = None
    ended: bool = False  # the server ended the response


def stream_of(response: httpx.Response) -> Stream:
    return Stream(response.iter_lines())


def read(stream: Stream, *, stop: Any = None) -> Stream:
    """Parse the stream's events until it ends, or `stop(stream)` is true."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in stream.lines:
        if line == "":
            if data:
                name = fields.get("event", "message")
                stream.events.append(Event(fields.get("id"), name, json.loads("\n".join(data))))
            fields, data = {}, []
            if stop is not None and stop(stream):
                return stream
            continue
        if line.startswith(":"):
            stream.comments += 1
            if stop is not None and stop(stream):
                return stream
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "retry":
            stream.retry = int(value)
        else:
            fields[name] = value
    stream.ended = True
    return stream
