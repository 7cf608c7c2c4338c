"""How a setting is declared (`Setting`), and the readers of a variable's text: each returns
the value or raises `ValueError` saying what it expected."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from jobkit.local import blobs

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Setting:
    """One environment variable: its name, the `Settings` field it sets and how its text is
    read, and its default and meaning as the README's table shows them."""

    name: str
    field: str
    parse: Callable[[str], Any]
    default: str
    meaning: str
    fallbacks: tuple[str, ...] = ()
    """Other variables read, in order, when `name` is unset (Google's own conventions)."""


def text(value: str) -> str:
    return value


def integer(value: str) -> int:
    return int(value)


def number(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def queues(value: str) -> frozenset[str] | None:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    return names or None


def optional(value: str) -> str | None:
    return value or None


def seconds_or_off(value: str) -> float | None:
    seconds = number(value)
    if seconds < 0:
        raise ValueError("expected seconds >= 0 (0 turns it off)")
    return seconds or None


def names(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def matching(pattern: str, expected: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}")
        return value

    return parse


def base_url(value: str) -> str | None:
    """An http(s) URL with a host and no query, its trailing `/` dropped; empty for none."""
    if not value:
        return None
    if not _BASE_URL.fullmatch(value):
        raise ValueError("expected a base URL like https://jobkit-abc123-uc.a.run.app")
    return value.rstrip("/")


def secret(value: str) -> str | None:
    """A shared secret: empty for none, else at least 16 characters."""
    if not value:
        return None
    if len(value) < MIN_SECRET:
        raise ValueError(f"expected a secret of at least {MIN_SECRET} characters")
    return value


MIN_SECRET = 16
_BASE_URL = re.compile(r"https?://[^/?#\s]+(/[^?#\s]*)?")


def bucket(value: str) -> str | None:
    if not value:
        return None
    longest = 222 if "." in value else 63
    if not (3 <= len(value) <= longest and _BUCKET.fullmatch(value)):
        raise ValueError(
            "expected a bucket name: 3-63 of a-z 0-9 - _ . (a letter or digit at each end)"
        )
    return value


def prefix(value: str) -> str:
    stripped = value.strip("/")
    if stripped:
        blobs.check_key(stripped)  # ValueError says what is wrong
    return stripped


_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")


def off_or(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """Empty, `off` or `0` turn a limit off; anything else is parsed."""

    def parsed(value: str) -> T | None:
        if value.strip().lower() in {"", "off", "0"}:
            return None
        return parse(value)

    return parsed


_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def origins(value: str) -> tuple[str, ...]:
    """Comma-separated origins, each `scheme://host[:port]` exactly as a browser sends it."""
    origins = tuple(part.strip() for part in value.split(",") if part.strip())
    for origin in origins:
        if origin == "*":
            raise ValueError("list the origins one by one; '*' is not accepted")
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"{origin!r} is not an origin like https://app.example.com[:port]")
    return origins
