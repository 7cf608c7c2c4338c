"""A small bounded cache keyed by an object's identity, for values derived from immutable objects.

A new version of a job shares most of its parts (params, input, an error, an instant, its
history entries) with the version before, as the same immutable objects, and the work
done on a part (formatting an instant, writing a map's JSON, rendering a status body) is
a pure function of it. Remembering that work by the object's identity turns most of it
into one dictionary lookup.
"""

from __future__ import annotations

from typing import Any, Final, Generic, TypeVar

V = TypeVar("V")


class IdentityCache(Generic[V]):
    """Values derived from objects, remembered by the objects' identity.

    Each entry holds its object, so that the object's `id` cannot be reused by another
    while the entry lives. Bounded by a number of entries and, optionally, by a total
    `size` the caller measures (characters of text, say); when either bound is reached it
    is simply cleared, which costs one miss per object still in use.

    Threading: `get` and `put` are each a few dictionary operations, atomic under the GIL
    one by one. Threads may race to fill or clear it; that only costs misses, since a value
    is a pure function of its object and any value found for an object is right.
    """

    __slots__ = ("_entries", "_max_entries", "_max_size", "_size")

    def __init__(self, max_entries: int = 1024, max_size: int | None = None) -> None:
        self._entries: dict[int, tuple[Any, V]] = {}
        self._max_entries: Final = max_entries
        self._max_size: Final = max_size
        self._size = 0

    def get(self, obj: object) -> V | None:
        """The value remembered for `obj`, or None."""
        found = self._entries.get(id(obj))
        if found is not None and found[0] is obj:
            return found[1]
        return None

    def put(self, obj: object, value: V, size: int = 0) -> V:
        """Remember `value` for `obj` (`size` counts against `max_size`); returns `value`."""
        entries = self._entries
        if len(entries) >= self._max_entries or (
            self._max_size is not None and self._size > self._max_size
        ):
            entries.clear()
            self._size = 0
        entries[id(obj)] = (obj, value)
        self._size += size
        return value

    def __len__(self) -> int:
        return len(self._entries)
