"""Typed wrappers over pyrsistent's `freeze`, usable as attrs converters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pyrsistent import PMap, PVector, freeze


def mapping(value: Mapping[str, Any]) -> PMap[str, Any]:
    """Freeze `value`; a PMap is taken as already frozen (pyrsistent's strict freeze would
    rebuild it, the costliest part of a lifecycle step)."""
    if isinstance(value, PMap):
        return value
    return cast("PMap[str, Any]", freeze(value))


def optional_mapping(value: Mapping[str, Any] | None) -> PMap[str, Any] | None:
    return None if value is None else mapping(value)


def anything(value: Any) -> Any:
    if isinstance(value, PMap | PVector):
        return value
    return freeze(value)
