"""`deploy/firestore.indexes.json` declares exactly the composite indexes the store's queries
need. The emulator serves any query without an index; production refuses one it lacks. So
this test records every query the store issues over a workload that reaches each query
shape, works out the index Firestore needs for it, and checks the file against them."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from google.cloud import firestore

from jobkit import listing
from jobkit.status import Status
from jobkit_gcp import firestore_queries as queries
from jobkit_gcp import firestore_turns
from jobkit_gcp.firestore import FirestoreJobStore
from jobkit_gcp.firestore_doorbell import FirestoreDoorbell
from jobkit_gcp.firestore_feed import FirestoreChangeFeed
from tests.jobkit.conformance import T0, at, claimed, insert_all, new
from tests.jobkit_gcp.conftest import Emulators, unique

INDEXES = Path(__file__).resolve().parents[2] / "deploy" / "firestore.indexes.json"

# (equality fields, ordered fields with their directions): what a composite index must hold.
Need = tuple[frozenset[str], tuple[tuple[str, bool], ...]]


def need(shape: queries.Shape) -> Need:
    """The composite index a query needs: its equality fields (`==`, `in`: any order) first,
    then its orders, field by field and direction by direction. A trailing `__name__` going
    the last field's way is implicit in every index; every range field must be ordered."""
    equality = frozenset(f.field for f in shape.filters if f.op in queries.EQUALITY)
    ranges = {f.field for f in shape.filters if f.op not in queries.EQUALITY}
    orders = [(order.field, order.descending) for order in shape.orders]
    assert ranges <= {field for field, _ in orders}, f"a range field is not ordered: {shape}"
    if len(orders) > 1 and orders[-1] == (queries.NAME, orders[-2][1]):
        orders.pop()
    assert queries.NAME not in {field for field, _ in orders}, f"an odd order: {shape}"
    return equality, tuple(orders)


def serving(index: list[tuple[str, bool]], wanted: Need) -> bool:
    equality, orders = wanted
    k = len(equality)
    return {name for name, _ in index[:k]} == equality and tuple(index[k:]) == orders


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[queries.Shape]:
    """Every shape the store (and the listeners) build a query from, recorded on its way to
    the client."""
    seen: list[queries.Shape] = []
    for name in ("build", "build_listened"):
        built = getattr(queries, name)

        def recording(collection: Any, shape: queries.Shape, built: Any = built) -> Any:
            seen.append(shape)
            return built(collection, shape)

        monkeypatch.setattr(queries, name, recording)
    return seen


def list_queries() -> Iterator[listing.Query]:
    """Every combination of the listing's filters, sorts, directions and a cursor."""
    for statuses, types, start, end, sort, down, cursor in itertools.product(
        (frozenset(), frozenset({Status.PENDING}), frozenset({Status.PENDING, Status.FAILED})),
        (frozenset(), frozenset({"echo"}), frozenset({"echo", "report"})),
        (None, at(1)),
        (None, at(9)),
        ("createdAt", "priority"),
        (False, True),
        (False, True),
    ):
        query = listing.Query(
            statuses=statuses,
            types=types,
            created_from=start,
            created_to=end,
            sort=sort,  # type: ignore[arg-type]
            descending=down,
            limit=1,
        )
        if cursor:
            key = (50, "2027-01-15T08:00:00.000000Z", "job-0001")
            query = attrs.evolve(query, after=key if sort == "priority" else key[1:])
        yield query


async def workload(store: FirestoreJobStore) -> None:
    await insert_all(store, [new(1), new(2, queue="slow"), claimed(new(3), T0, lease=1)])
    many = [f"queue-{n}" for n in range(40)]  # more than one `in` filter holds
    for queues in (None, ["slow"], ["slow", "default"], many):
        await store.claimable(at(5), queues, 2)
    for queues in (None, [], ["slow"], ["slow", "default"], many):
        await store.next_wakeup(queues)
    await store.stalled(at(5), 2)
    for queues in (None, ["slow"], ["slow", "default"], many):
        await store.count_due(at(5), queues, 10)
    await store.count_active("user-1", 10)
    await store.insert_in_turn([new(4, user="user-2"), new(5, queue="slow", priority=90)])
    await firestore_turns.fill(store)
    await store.counts(at(5), ["default", "slow"])
    for query in list_queries():
        await store.list("user-1", query)
    lots = listing.Query(types=frozenset(f"type-{n}" for n in range(40)))  # typed here
    await store.list("user-1", lots)


async def listened(store: FirestoreJobStore, client: firestore.Client) -> None:
    """The queries listened to: the doorbell's heads, the feed's user watch."""
    for queues in (None, ["slow"], [f"queue-{n}" for n in range(40)]):
        bell = FirestoreDoorbell(client, queues=queues)
        listener = await bell.listen(lambda: None)
        await listener.close()
    feed = FirestoreChangeFeed(store, client)
    async with feed.watch_user("user-1"):
        pass
    await feed.close()


def test_the_index_file_declares_exactly_the_indexes_the_queries_need(
    emulators: Emulators, issued: list[queries.Shape]
) -> None:
    async def main() -> None:
        project = unique("indexes")
        async with FirestoreJobStore(firestore.AsyncClient(project=project)) as store:
            await workload(store)
            await listened(store, firestore.Client(project=project))

    asyncio.run(main())
    needs = {need(shape) for shape in issued}
    assert len(needs) >= 20, needs  # the workload reached every sort of query
    document = json.loads(INDEXES.read_text())
    indexes = [
        [(f["fieldPath"], f["order"] == "DESCENDING") for f in index["fields"]]
        for index in document["indexes"]
    ]
    for wanted in sorted(needs, key=repr):
        assert any(serving(index, wanted) for index in indexes), f"no index serves {wanted}"
    for index in indexes:
        assert any(serving(index, wanted) for wanted in needs), f"an index no query uses: {index}"
    assert len({json.dumps(index) for index in indexes}) == len(indexes), "a duplicate index"
    assert {i["collectionGroup"] for i in document["indexes"]} == {"jobs"}
    assert {i["queryScope"] for i in document["indexes"]} == {"COLLECTION"}


def test_fields_no_query_reads_are_not_indexed_alone() -> None:
    """Single-field indexes cost a write per field per job and hot-spot on instants that
    only grow; the file exempts the free-form and time fields (composites still hold them)."""
    overrides = json.loads(INDEXES.read_text())["fieldOverrides"]
    exempt = {o["fieldPath"] for o in overrides if o["indexes"] == []}
    assert {"params", "result", "history", "metadata", "createdAt", "runAt"} <= exempt
