"""Fast, typed conversions between pyrsistent values and plain JSON-like values.

pyrsistent's own `freeze`/`thaw` test every value against abstract base
classes and, when strict, rebuild maps that are already frozen; on a job
queue's hot path (every read and write converts a job) that dominates, so
these check concrete types instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pyrsistent import PMap, PVector, pmap, pvector

PMAP_TYPE: type = type(pmap())
PVECTOR_TYPE: type = type(pvector())
_PMAP, _PVECTOR = PMAP_TYPE, PVECTOR_TYPE
_SCALARS = (str, int, float, bool, type(None))


def freeze(value: Any) -> Any:
    """dicts become PMaps and lists/tuples PVectors, recursively; frozen values pass through."""
    kind = type(value)
    if kind in _SCALARS or kind is _PMAP or kind is _PVECTOR:
        return value
    if kind is dict:
        return pmap({key: freeze(item) for key, item in value.items()})
    if kind is list or kind is tuple:
        return pvector([freeze(item) for item in value])
    if isinstance(value, PMap | PVector):
        return value
    if isinstance(value, Mapping):
        return pmap({key: freeze(item) for key, item in value.items()})
    return value


def thaw(value: Any) -> Any:
    """PMaps become dicts and PVectors lists, recursively."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is _PMAP or kind is dict:
        return {key: thaw(item) for key, item in value.items()}
    if kind is _PVECTOR or kind is list or kind is tuple:
        return [thaw(item) for item in value]
    return value


def mapping(value: Mapping[str, Any]) -> PMap[str, Any]:
    """Freeze `value`; a PMap is taken as already frozen."""
    if type(value) is _PMAP:
        return cast("PMap[str, Any]", value)
    return cast("PMap[str, Any]", freeze(dict(value)))


def optional_mapping(value: Mapping[str, Any] | None) -> PMap[str, Any] | None:
    return None if value is None else mapping(value)


def anything(value: Any) -> Any:
    return freeze(value)
