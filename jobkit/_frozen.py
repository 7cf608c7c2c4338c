"""Fast, typed conversions between pyrsistent values and plain JSON-like values and text.

pyrsistent's own `freeze`/`thaw` test every value against abstract base
classes and, when strict, rebuild maps that are already frozen; on a job
queue's hot path (every read and write converts a job) that dominates, so
these check concrete types instead. For the same reason `pairs` and `get` work on
a PMap's buckets directly (see "pyrsistent's layout" below), and `to_json` writes
JSON text remembering the parts jobs share.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from itertools import chain
from typing import Any, Final, cast

from pyrsistent import PMap, PVector, pmap, pvector

from jobkit import _cache, instants

PMAP_TYPE: type = type(pmap())
PVECTOR_TYPE: type = type(pvector())
_PMAP, _PVECTOR = PMAP_TYPE, PVECTOR_TYPE
# Values that are their own frozen form; instants too, which are immutable.
_SCALARS = (str, int, float, bool, type(None), datetime)


# -- pyrsistent's layout ---------------------------------------------------------
# A PMap is a PVector of buckets, each None or a list of (key, value) pairs, a key
# living in bucket `hash(key) % len(buckets)`. Reading that vector directly is several
# times cheaper than PMap's generic methods (three Python calls per lookup, a generator
# per walk), and every job read and write does both. `_layout_holds` checks at import
# that pyrsistent still lays maps out so; if a release ever changes it, `pairs` and
# `get` fall back to the public API.


def _pairs_direct(value: Any) -> list[tuple[Any, Any]]:
    return list(chain.from_iterable(filter(None, value._buckets)))  # in C: no Python loop


def _get_direct(value: Any, key: Any, default: Any = None) -> Any:
    buckets = value._buckets
    bucket = buckets[hash(key) % len(buckets)]
    if bucket:
        for name, item in bucket:
            if name == key:
                return item
    return default


def _layout_holds() -> bool:
    """Whether the direct functions agree with pyrsistent's public API."""
    try:
        sample: Any = pmap({f"key{n}": n for n in range(40)})
        return (
            _pairs_direct(sample) == list(sample.iteritems())
            and all(_get_direct(sample, key) is item for key, item in sample.iteritems())
            and _get_direct(sample, "absent", sample) is sample
        )
    except Exception:  # any surprise means: do not rely on the layout
        return False


_LAYOUT: Final = _layout_holds()
if not _LAYOUT:  # correct either way, only slower: say so once, where operators look
    logging.getLogger("jobkit").warning(
        "pyrsistent's map layout is not the one jobkit reads directly; using its public API"
        " (slower). Report the pyrsistent version to jobkit."
    )

pairs: Callable[[PMap[Any, Any]], list[tuple[Any, Any]]] = (
    _pairs_direct if _LAYOUT else lambda value: list(value.iteritems())
)
"""The (key, value) pairs of a PMap, in its iteration order."""

get: Callable[..., Any] = (
    _get_direct if _LAYOUT else lambda value, key, default=None: value.get(key, default)
)
"""`value.get(key, default=None)`, without the KeyError PMap's own `get` raises inside."""


EMPTY_MAP: Final[PMap[Any, Any]] = pmap()
EMPTY_VECTOR: Final[PVector[Any]] = pvector()


def freeze(value: Any) -> Any:
    """dicts become PMaps and lists/tuples PVectors, recursively; frozen values pass through.
    Empty ones all become the same two values (`EMPTY_MAP`, `EMPTY_VECTOR`), whose text
    `to_json` then remembers for good: most jobs have no params or metadata."""
    kind = type(value)
    if kind in _SCALARS or kind is _PMAP or kind is _PVECTOR:
        return value
    if kind is dict:
        if not value:
            return EMPTY_MAP
        return pmap({key: freeze(item) for key, item in value.items()})
    if kind is list or kind is tuple:
        if not value:
            return EMPTY_VECTOR
        return pvector([freeze(item) for item in value])
    if isinstance(value, PMap | PVector):
        return value
    if isinstance(value, Mapping):
        return pmap({key: freeze(item) for key, item in value.items()})
    return value


def thaw(value: Any) -> Any:
    """PMaps (and other mappings, a job's say) become dicts and PVectors lists, recursively."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is _PMAP:
        return {key: thaw(item) for key, item in pairs(value)}
    if kind is dict:
        return {key: thaw(item) for key, item in value.items()}
    if kind is _PVECTOR or kind is list or kind is tuple:
        return [thaw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
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


# -- JSON text -------------------------------------------------------------------


def _default(value: Any) -> Any:
    kind = type(value)
    if kind is _PMAP:
        return dict(pairs(value))
    if kind is _PVECTOR:
        return list(value)
    if kind is datetime:
        return instants.format(value)
    if isinstance(value, Mapping):  # a job, say
        return dict(value.items())
    raise TypeError(f"{kind.__name__} is not JSON: {value!r}")


# The reference encoding, and the one used for whatever `to_json` has no fast path for.
ENCODER: Final = json.JSONEncoder(
    default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_string = json.encoder.encode_basestring  # ENCODER's own string escaping (C)


def _c_encoder() -> Callable[[Any, int], list[str]] | None:
    """ENCODER's C encoder, made once: `ENCODER.encode` builds one (and a closure) per call,
    which costs more than encoding a small map. None where there is no C encoder."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # markers=None: no cycle check, frozen values cannot hold cycles.
        encoder: Callable[[Any, int], list[str]] = make(
            None, _default, _string, None, ":", ",", False, False, False
        )
        probe = {"a": [1, 2.5, None, True, "é\n"], "b": pmap({"c": datetime(2030, 1, 1)})}
        if "".join(encoder(probe, 0)) != ENCODER.encode(probe):
            return None
    except Exception:  # a different signature in another Python: keep the reference
        return None
    return encoder


_ENCODE = _c_encoder()


def encode(value: Any) -> str:
    """`ENCODER.encode(value)`."""
    if _ENCODE is None:
        return ENCODER.encode(value)
    return "".join(_ENCODE(value, 0))


# A new version of a job shares most of its parts (params, input, metadata...) with the
# one before, as the same immutable objects: their text is remembered by identity.
_TEXTS: Final = _cache.IdentityCache[str](max_entries=1024, max_size=1 << 20)  # characters


_HEADS: dict[str, str] = {}  # `"key":` by key: a job's keys recur in every write
_MAX_HEADS: Final = 1024


def to_json(value: Any, *, shared: bool = False) -> str:
    """Compact JSON text of a frozen value, instants as `instants.format`, exactly as
    `ENCODER.encode(value)` writes it (PMaps' keys in their iteration order), only faster.

    The text of every PMap and PVector inside `value` is remembered while they live on
    in newer versions of a job; `value` itself too when `shared` (a part of a job).
    """
    try:
        kind = type(value)
        if shared or (kind is not _PMAP and kind is not _PVECTOR):
            return _text(value)
        return _map_text(pairs(value)) if kind is _PMAP else _vector_text(value)
    except RecursionError:  # nested deeper than Python frames go: the C encoder copes
        return ENCODER.encode(value)


def items_to_json(items: list[tuple[Any, Any]]) -> str:
    """`to_json` of a map given as its (key, value) pairs, its parts' text remembered."""
    try:
        return _map_text(items)
    except RecursionError:  # nested deeper than Python frames go: the C encoder copes
        return ENCODER.encode(dict(items))


def _text(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is _PMAP or kind is _PVECTOR:
        found = _TEXTS.get(value)
        if found is not None:
            return found
        text = _map_text(pairs(value)) if kind is _PMAP else _vector_text(value)
        return _TEXTS.put(value, text, len(text))
    if kind is bool:
        return "true" if value else "false"
    if kind is datetime:
        return '"' + instants.format(value) + '"'  # digits, `-`, `:`, `.`, `T`, `Z`: no escapes
    return encode(value)  # floats (NaN is refused), subclasses, the unexpected


def _vector_text(value: Any) -> str:
    return "[" + ",".join([_text(item) for item in value]) + "]"


def _map_text(items: list[tuple[Any, Any]]) -> str:
    parts: list[str] = []
    append = parts.append
    for key, item in items:
        head = _HEADS.get(key)
        if head is None:
            if type(key) is not str:  # JSON keys are strings: let the encoder convert or refuse
                return ENCODER.encode(dict(items))
            if len(_HEADS) >= _MAX_HEADS:
                _HEADS.clear()
            head = _HEADS[key] = _string(key) + ":"
        # The commonest values inline; the rest, containers included, through `_text`.
        kind = type(item)
        if kind is str:
            append(head + _string(item))
        elif item is None:
            append(head + "null")
        elif kind is int:
            append(head + int.__repr__(item))
        else:
            append(head + _text(item))
    return "{" + ",".join(parts) + "}"
