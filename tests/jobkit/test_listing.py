"""Cursors: issued by `page`, accepted back only for the same sort order and shape."""

from __future__ import annotations

import base64
import json

import pytest
from returns.result import Failure, Success

from jobkit import listing


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_a_cursor_round_trips_for_its_own_sort_order() -> None:
    query = listing.Query(sort="priority", descending=False)
    cursor = listing.encode_cursor((5, "2030-01-01T00:00:00.000000Z", "job-1"), query)
    assert listing.decode_cursor(cursor, query) == Success(
        listing.Query(
            sort="priority", descending=False, after=(5, "2030-01-01T00:00:00.000000Z", "job-1")
        )
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !!",
        forged({"a": 1}),
        forged(["createdAt", True, ["2030-01-01T00:00:00.000000Z"]]),
        forged(["createdAt", True, [1, 2]]),
        forged(["createdAt", True, "x"]),
        forged(["createdAt", True, ["a", "b", "c"]]),
    ],
)
def test_a_malformed_cursor_is_refused_as_invalid(cursor: str) -> None:
    match listing.decode_cursor(cursor, listing.Query()):
        case Failure(refused):
            assert refused.problems[0].field == "cursor"
        case _:
            pytest.fail("accepted a forged cursor")


def test_a_cursor_from_another_sort_order_is_refused() -> None:
    by_priority = listing.Query(sort="priority")
    cursor = listing.encode_cursor((5, "2030-01-01T00:00:00.000000Z", "job-1"), by_priority)
    refused = listing.decode_cursor(cursor, listing.Query(sort="createdAt"))
    assert isinstance(refused, Failure)
    assert "sort order" in refused.failure().message


def test_limit_is_bounded() -> None:
    with pytest.raises(Exception, match="limit"):
        listing.Query(limit=0)
    with pytest.raises(Exception, match="limit"):
        listing.Query(limit=listing.MAX_LIMIT + 1)
