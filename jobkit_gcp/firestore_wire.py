"""Firestore's BatchWrite, which the async client does not expose: independent guarded writes.

A `WriteBatch` commits atomically (one write that loses fails them all) and
the async client has no `BulkWriter`; the store needs many compare-and-sets
in one round trip, each won or lost alone. That is the BatchWrite RPC: each
write carries its own precondition and answers with its own status. This
module reaches it through the client's own GAPIC stub, so the client's
emulator handling (`FIRESTORE_EMULATOR_HOST`), credentials and retries apply.

Those handles are the client's private attributes; they are read here and
nowhere else (checked against google-cloud-firestore 2.x).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
import grpc
from google.api_core import exceptions
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.async_client import AsyncClient
from google.cloud.firestore_v1.types import common, document, write
from google.rpc import code_pb2

MAX_WRITES: Final = 500  # per BatchWrite request


class Outcome(enum.Enum):
    WON = "won"
    LOST = "lost"  # a precondition failed: the document is not as the write expected
    RETRY = "retry"  # not applied, for a passing reason (contention, overload)
    ERROR = "error"


_OUTCOMES: Final = {
    code_pb2.OK: Outcome.WON,
    code_pb2.FAILED_PRECONDITION: Outcome.LOST,
    code_pb2.NOT_FOUND: Outcome.LOST,
    code_pb2.ALREADY_EXISTS: Outcome.LOST,
    code_pb2.ABORTED: Outcome.RETRY,
    code_pb2.RESOURCE_EXHAUSTED: Outcome.RETRY,
    code_pb2.UNAVAILABLE: Outcome.RETRY,
}


def document_path(client: AsyncClient, collection: str, doc_id: str) -> str:
    """`projects/P/databases/D/documents/COLLECTION/ID`."""
    return f"{client._database_string}/documents/{collection}/{doc_id}"


def create(path: str, fields: Mapping[str, Any]) -> write.Write:
    """Write the document if none is there (what `create()` does)."""
    return _put(path, fields, common.Precondition(exists=False))


def replace(path: str, fields: Mapping[str, Any], update_time: datetime) -> write.Write:
    """Replace the whole document if it was last written at `update_time`."""
    return _put(path, fields, common.Precondition(update_time=update_time))


def delete(path: str, update_time: datetime) -> write.Write:
    return write.Write(delete=path, current_document=common.Precondition(update_time=update_time))


def _put(path: str, fields: Mapping[str, Any], guard: common.Precondition) -> write.Write:
    body = document.Document(name=path, fields=_helpers.encode_dict(fields))
    return write.Write(update=body, current_document=guard)


@attrs.frozen
class Answer:
    """What became of one write: its outcome, and the document's update time if it won
    (a deletion has none); `error` is the exception the client would raise for it."""

    outcome: Outcome
    update_time: datetime | None
    code: int
    message: str

    def error(self) -> Exception:
        code = _STATUS_CODES.get(self.code, _UNKNOWN)
        found: Exception = exceptions.from_grpc_status(code, self.message)  # type: ignore[no-untyped-call]
        return found


async def batch_write(client: AsyncClient, writes: Sequence[write.Write]) -> list[Answer]:
    """Apply `writes` (at most `MAX_WRITES`, one per document) in one request, each alone."""
    response = await client._firestore_api.batch_write(
        request={"database": client._database_string, "writes": list(writes)},
        metadata=client._rpc_metadata,
    )
    return [
        Answer(
            outcome=_OUTCOMES.get(status.code, Outcome.ERROR),
            update_time=result.update_time,
            code=status.code,
            message=status.message,
        )
        for status, result in zip(response.status, response.write_results, strict=True)
    ]


_STATUS_CODES: Final = {member.value[0]: member for member in grpc.StatusCode}
_UNKNOWN: Final = grpc.StatusCode.UNKNOWN


async def close(client: AsyncClient) -> None:
    """Close the client's channel, if it opened one (the async client has no `close`)."""
    api = client._firestore_api_internal
    if api is not None:
        await api.transport.close()
