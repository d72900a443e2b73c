"""The BlobStore contract, run against every store: the local folder and S3 (moto over HTTP).

Whatever backend the configuration picks, the service relies on exactly these behaviours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.errors import BlobExists, BlobNotFound
from app.storage import BlobStore, build_store
from tests import services


@pytest.fixture(scope="module")
def moto() -> Iterator[services.MotoServer]:
    with services.moto_server() as server:
        yield server


def _settings(storage_url: str, moto: services.MotoServer | None = None) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        storage_url=storage_url,
        s3_endpoint_url=moto.endpoint_url if moto else None,
        s3_region=moto.region if moto else None,
        s3_access_key_id=moto.access_key_id if moto else None,
        s3_secret_access_key=moto.secret_access_key if moto else None,
        s3_create_bucket=True,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return build_store(_settings(f"file://{tmp_path / 'blobs'}"))
    moto = request.getfixturevalue("moto")
    return build_store(_settings(f"s3://{services.unique_bucket()}/archive", moto))


def test_put_then_get_returns_the_same_bytes(store: BlobStore) -> None:
    data = bytes(range(256)) * 64  # every byte value: nothing may be re-encoded
    store.put("cam-1/2024/frame.webp", data, content_type="image/webp")
    assert store.get("cam-1/2024/frame.webp") == data


def test_put_never_overwrites(store: BlobStore) -> None:
    store.put("k", b"first")
    with pytest.raises(BlobExists):
        store.put("k", b"second")
    assert store.get("k") == b"first"


def test_get_of_a_missing_key_is_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.get("never/written")


def test_exists_follows_put_and_delete(store: BlobStore) -> None:
    assert not store.exists("k")
    store.put("k", b"x")
    assert store.exists("k")
    store.delete("k")
    assert not store.exists("k")


def test_delete_is_idempotent(store: BlobStore) -> None:
    store.put("k", b"x")
    store.delete("k")
    store.delete("k")
    with pytest.raises(BlobNotFound):
        store.get("k")


def test_a_deleted_key_can_be_written_again(store: BlobStore) -> None:
    store.put("k", b"old")
    store.delete("k")
    store.put("k", b"new")
    assert store.get("k") == b"new"


def test_keys_lists_what_was_put_filtered_by_prefix(store: BlobStore) -> None:
    for key in ("a/1", "a/2", "b/1"):
        store.put(key, key.encode())
    assert sorted(store.keys()) == ["a/1", "a/2", "b/1"]
    assert sorted(store.keys("a/")) == ["a/1", "a/2"]
    assert list(store.keys("missing/")) == []


def test_empty_blob_round_trips(store: BlobStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""


def test_check_passes_on_a_working_store(store: BlobStore) -> None:
    store.check()


def test_modified_at_tells_when_a_blob_was_written(store: BlobStore) -> None:
    before = time.time()
    store.put("k", b"x")
    written = store.modified_at("k")  # type: ignore[attr-defined]
    # S3 keeps whole seconds; the local clock and the store's may differ by a little.
    assert before - 2 <= written <= time.time() + 2
    with pytest.raises(BlobNotFound):
        store.modified_at("missing")  # type: ignore[attr-defined]
