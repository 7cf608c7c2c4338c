"""Typed wrappers over pyrsistent's `freeze`, usable as attrs converters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pyrsistent import freeze
from pyrsistent.typing import PMap


def mapping(value: Mapping[str, Any]) -> PMap[str, Any]:
    return cast("PMap[str, Any]", freeze(value))


def optional_mapping(value: Mapping[str, Any] | None) -> PMap[str, Any] | None:
    return None if value is None else mapping(value)


def anything(value: Any) -> Any:
    return freeze(value)
