"""`jobkit_gcp`'s curated namespace, and what building its runtime checks before any request."""

from __future__ import annotations

import asyncio

import pytest

import jobkit_gcp
from jobkit.local import Runtime
from jobkit_gcp import backend
from tests.jobkit_gcp.conftest import Emulators, unique


def test_the_namespace_holds_the_stores_and_the_runtime() -> None:
    names = {"Config", "FirestoreJobStore", "GcsBlobStore", "SetupError", "runtime"}
    assert names <= set(jobkit_gcp.__all__)
    assert all(hasattr(jobkit_gcp, name) for name in jobkit_gcp.__all__)


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        (backend.Config(bucket="b", collection="a/b"), "collection"),
        (backend.Config(bucket="b", collection="__x__"), "collection"),
        (backend.Config(bucket="b", prefix="a//b"), "prefix"),
    ],
)
def test_a_bad_setting_is_named_before_any_client_is_built(
    config: backend.Config, setting: str
) -> None:
    with pytest.raises(backend.SetupError) as caught:
        backend.stores(config)
    assert caught.value.setting == setting


def test_check_names_a_missing_bucket_and_passes_a_present_one(emulators: Emulators) -> None:
    from google.cloud import storage

    bucket = unique("present")
    storage.Client().create_bucket(bucket)

    async def main(config: backend.Config) -> list[str]:
        async with jobkit_gcp.runtime(config) as runtime:
            assert isinstance(runtime, Runtime)
            store, blobs = runtime.raw_store, runtime.raw_blobs
            assert isinstance(store, jobkit_gcp.FirestoreJobStore)
            assert isinstance(blobs, jobkit_gcp.GcsBlobStore)
            return await backend.check(store, blobs, config)

    assert asyncio.run(main(backend.Config(bucket=bucket, project=unique("check")))) == []
    with pytest.raises(backend.SetupError, match="does not exist") as caught:
        asyncio.run(main(backend.Config(bucket=unique("absent"), project=unique("check"))))
    assert caught.value.setting == "bucket"


def test_a_runtime_is_ready_when_firestore_and_the_bucket_answer(emulators: Emulators) -> None:
    from google.api_core import exceptions
    from google.cloud import storage

    bucket = unique("ready")
    storage.Client().create_bucket(bucket)

    async def main(config: backend.Config) -> None:
        async with jobkit_gcp.runtime(config) as runtime:
            await runtime.ready()

    asyncio.run(main(backend.Config(bucket=bucket, project=unique("ready"))))
    with pytest.raises(exceptions.NotFound):
        asyncio.run(main(backend.Config(bucket=unique("gone"), project=unique("ready"))))
