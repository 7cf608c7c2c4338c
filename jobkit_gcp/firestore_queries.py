"""Every query the Firestore job store issues, as plain values: filters, orders, a limit.

A `Shape` says what a query asks; `build` turns it into the client's query. The
store builds its queries only from these functions, so a test can list every
shape it may issue and check that `deploy/firestore.indexes.json` declares an
index serving each: the emulator does not enforce indexes, production does.

Instants are `instants.format` text (see `firestore_documents`), so `runAt <=
now` is a text comparison that orders as time does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import attrs
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.async_collection import AsyncCollectionReference
from google.cloud.firestore_v1.async_query import AsyncQuery
from google.cloud.firestore_v1.collection import CollectionReference
from google.cloud.firestore_v1.query import Query

from jobkit import instants, listing, schedule
from jobkit.status import ACTIVE, PENDING, PROCESSING, Status

Operator = Literal["==", "in", "<", "<=", ">", ">="]
EQUALITY: Final = frozenset({"==", "in"})
NAME: Final = "__name__"  # the document's id: the last key of every order, as in the reference
# Firestore runs `in` filters as a disjunction: their values multiplied must stay within 30.
MAX_DISJUNCTIONS: Final = 30


@attrs.frozen
class Filter:
    field: str
    op: Operator
    value: Any


@attrs.frozen
class Order:
    field: str
    descending: bool = False


@attrs.frozen(kw_only=True)
class Shape:
    filters: tuple[Filter, ...]
    orders: tuple[Order, ...]
    limit: int
    after: tuple[Any, ...] | None = None  # the last row's values of `orders`, from a cursor


def _one_of(field: str, values: Collection[str]) -> Filter:
    ordered = sorted(values)
    return Filter(field, "==", ordered[0]) if len(ordered) == 1 else Filter(field, "in", ordered)


def claimable(now: datetime, queues: Collection[str] | None, limit: int) -> Shape:
    """Due pending jobs in claim order (`schedule.claim_key`): `queues` holds at most 30."""
    filters = [Filter("status", "==", PENDING.value)]
    if queues is not None:
        filters.append(_one_of("queue", queues))
    filters.append(Filter("runAt", "<=", instants.format(now)))
    orders = (
        Order("priority", True),
        Order("turn"),
        Order("runAt"),
        Order("createdAt"),
        Order(NAME),
    )
    return Shape(filters=tuple(filters), orders=orders, limit=limit)


def _statuses(statuses: Collection[Status]) -> Filter:
    return Filter("status", "in", sorted(status.value for status in statuses))


def served(queue: str, priority: int) -> Shape:
    """The band's clock (`schedule.Turns.served`): its claimed job with the largest turn."""
    return Shape(
        filters=(
            _statuses(schedule.SERVED),
            Filter("queue", "==", queue),
            Filter("priority", "==", priority),
        ),
        orders=(Order("turn", True),),
        limit=1,
    )


# A line's jobs that hold a turn: all but the cancelled (live, or taken by a claim).
_HELD = ACTIVE | schedule.SERVED


def held(line: schedule.Line) -> Shape:
    """A user's job in a band with the largest turn, of those not cancelled
    (`schedule.standing` makes the user's `last` of it)."""
    return Shape(
        filters=(
            Filter("userId", "==", line.user_id),
            Filter("queue", "==", line.queue),
            Filter("priority", "==", line.priority),
            _statuses(_HELD),
        ),
        orders=(Order("turn", True),),
        limit=1,
    )


def stalled(now: datetime, limit: int) -> Shape:
    """Processing jobs whose lease ran out, the longest-expired first."""
    return Shape(
        filters=(
            Filter("status", "==", PROCESSING.value),
            Filter("leaseExpiresAt", "<=", instants.format(now)),
        ),
        orders=(Order("leaseExpiresAt"), Order(NAME)),
        limit=limit,
    )


def next_due(queues: Collection[str] | None) -> Shape:
    """The pending job (in `queues`, at most 30) due first."""
    filters = [Filter("status", "==", PENDING.value)]
    if queues is not None:
        filters.append(_one_of("queue", queues))
    return Shape(filters=tuple(filters), orders=(Order("runAt"),), limit=1)


def due(now: datetime, queues: Collection[str] | None, limit: int) -> Shape:
    """The pending jobs (in `queues`, at most 30) due by `now`, counted up to `limit` for
    push dispatch's sweep; ordered by `runAt` as `next_due` is, so they share its index."""
    filters = [Filter("status", "==", PENDING.value)]
    if queues is not None:
        filters.append(_one_of("queue", queues))
    filters.append(Filter("runAt", "<=", instants.format(now)))
    return Shape(filters=tuple(filters), orders=(Order("runAt"),), limit=limit)


def pending_page(after: tuple[Any, ...] | None, limit: int) -> Shape:
    """Every pending job, page by page in `runAt` order (`next_due`'s index serves it)."""
    return Shape(
        filters=(Filter("status", "==", PENDING.value),),
        orders=(Order("runAt"), Order(NAME)),
        limit=limit,
        after=after,
    )


def next_expiry() -> Shape:
    """The processing job whose lease runs out first (`>= ""`: only text, never null)."""
    return Shape(
        filters=(
            Filter("status", "==", PROCESSING.value),
            Filter("leaseExpiresAt", ">=", ""),
        ),
        orders=(Order("leaseExpiresAt"),),
        limit=1,
    )


def in_queue(status: str, queue: str, due_by: datetime | None = None, limit: int = 1) -> Shape:
    """The jobs of one status in `queue` (due by `due_by`, when given), earliest `runAt`
    first: counted for the gauges, or the first read for the oldest due job. Ordered by
    `runAt` whatever the filter, so that every such query shares one index."""
    filters = [Filter("status", "==", status), Filter("queue", "==", queue)]
    if due_by is not None:
        filters.append(Filter("runAt", "<=", instants.format(due_by)))
    return Shape(filters=tuple(filters), orders=(Order("runAt"),), limit=limit)


def active(user_id: str, limit: int) -> Shape:
    """A user's pending or processing jobs (counted, at most `limit`, for quotas)."""
    return Shape(
        filters=(
            Filter("userId", "==", user_id),
            Filter("status", "in", sorted((PENDING.value, PROCESSING.value))),
        ),
        orders=(),
        limit=limit,
    )


LIVE_LIMIT: Final = 1000  # a user's live jobs a listener holds (a user's quota is lower)


def live(user_id: str) -> Shape:
    """A user's pending or processing jobs, listened to for the user's event stream (the
    filters of `active`, so the same index serves it)."""
    return active(user_id, LIVE_LIMIT)


def page(user_id: str, query: listing.Query, *, with_types: bool, extra: int) -> Shape:
    """`listing.page` as one query: `limit + extra` rows from the cursor on. Type filters
    go to the server only `with_types` (the caller filters the rest itself)."""
    filters = [Filter("userId", "==", user_id)]
    if query.statuses:
        filters.append(_one_of("status", {status.value for status in query.statuses}))
    if with_types and query.types:
        filters.append(_one_of("type", query.types))
    if query.created_from is not None:
        filters.append(Filter("createdAt", ">=", instants.format(query.created_from)))
    if query.created_to is not None:
        filters.append(Filter("createdAt", "<", instants.format(query.created_to)))
    down = query.descending
    fields = ("priority", "createdAt", NAME) if query.sort == "priority" else ("createdAt", NAME)
    return Shape(
        filters=tuple(filters),
        orders=tuple(Order(field, down) for field in fields),
        limit=query.limit + extra,
        after=query.after,
    )


def types_fit(query: listing.Query) -> bool:
    """Whether the type filter can go to the server beside the status filter."""
    return len(query.types) * max(1, len(query.statuses)) <= MAX_DISJUNCTIONS


def chunks(names: Collection[str], size: int = MAX_DISJUNCTIONS) -> list[list[str]]:
    """`names` sorted, in groups small enough for one `in` filter each."""
    ordered = sorted(set(names))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def build(collection: AsyncCollectionReference, shape: Shape) -> AsyncQuery:
    built: AsyncQuery = _built(collection, shape)
    return built


def build_listened(collection: CollectionReference, shape: Shape) -> Query:
    """`build` on the sync client, whose queries can be listened to (`on_snapshot`)."""
    built: Query = _built(collection, shape)
    return built


def _built(collection: Any, shape: Shape) -> Any:
    query: Any = collection
    for item in shape.filters:
        query = query.where(filter=FieldFilter(item.field, item.op, item.value))
    for order in shape.orders:
        query = query.order_by(
            order.field,
            direction=AsyncQuery.DESCENDING if order.descending else AsyncQuery.ASCENDING,
        )
    if shape.after is not None:
        query = query.start_after(dict(zip(_fields(shape.orders), shape.after, strict=True)))
    return query.limit(shape.limit)


def _fields(orders: Sequence[Order]) -> list[str]:
    return [order.field for order in orders]
