"""Performers for the blob effects over any `ports.BlobStore`: effect -> store call -> Result."""

from __future__ import annotations

from typing import Any

from returns.result import Failure, Result, Success

from jobkit import effects, errors, ports
from jobkit.worker.interpreter import Performers


def _missing(key: str) -> Failure[errors.Error]:
    return Failure(errors.permanent("not_found", f"no blob at {key!r}", key=key))


def blob_performers(store: ports.BlobStore) -> Performers:
    async def stat(effect: effects.StatBlob) -> Result[effects.BlobInfo, errors.Error]:
        try:
            size, content_type = await store.stat(effect.key)
        except ports.BlobNotFound:
            return _missing(effect.key)
        return Success(effects.BlobInfo(key=effect.key, size=size, content_type=content_type))

    async def read(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        try:
            return Success(await store.read(effect.key))
        except ports.BlobNotFound:
            return _missing(effect.key)

    async def write(effect: effects.WriteBlob) -> Result[effects.BlobInfo, errors.Error]:
        await store.put_bytes(effect.key, effect.data, effect.content_type)
        info = effects.BlobInfo(
            key=effect.key, size=len(effect.data), content_type=effect.content_type
        )
        return Success(info)

    async def delete(effect: effects.DeleteBlob) -> Result[None, errors.Error]:
        await store.delete(effect.key)
        return Success(None)

    table: dict[type, Any] = {
        effects.StatBlob: stat,
        effects.ReadBlob: read,
        effects.WriteBlob: write,
        effects.DeleteBlob: delete,
    }
    return table
