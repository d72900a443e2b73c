"""The local-folder store: atomic writes that never overwrite, and keys that stay inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import Settings
from app.errors import BlobExists, StorageUnavailable
from app.storage import LocalStore, build_store
from app.storage.base import check_key


def test_put_writes_the_file_under_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    store.put("frames/ab/abc.webp", b"pixels")
    assert (tmp_path / "blobs" / "frames" / "ab" / "abc.webp").read_bytes() == b"pixels"


def test_a_failed_write_leaves_no_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageUnavailable, match="No space"):
        store.put("frames/x.png", b"half a frame")
    monkeypatch.undo()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert list(store.keys()) == []


def test_an_existing_blob_is_never_replaced(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"first")
    with pytest.raises(BlobExists):
        store.put("k", b"second")
    assert store.get("k") == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temporary left behind


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "a/../../b", "a//b", "a/./b", "a\\b", ".hidden", "a/"]
)
def test_keys_that_could_leave_the_folder_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "blobs")
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        check_key(key)


def test_keys_lists_blobs_but_not_temporaries(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/1", b"1")
    (tmp_path / "a" / ".tmp-interrupted").write_bytes(b"partial")
    assert list(store.keys()) == ["a/1"]


def test_check_fails_when_the_folder_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the blob folder should be")
    with pytest.raises(StorageUnavailable):
        LocalStore(blocker).check()


@pytest.mark.parametrize(
    "url", ["{tmp}/blobs", "file://{tmp}/blobs", "file://localhost{tmp}/blobs"]
)
def test_build_store_takes_a_folder_or_a_file_url(tmp_path: Path, url: str) -> None:
    store = build_store(Settings(_env_file=None, storage_url=url.format(tmp=tmp_path)))  # type: ignore[call-arg]
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "blobs").resolve()


def test_build_store_refuses_unknown_schemes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported storage URL"):
        build_store(Settings(_env_file=None, storage_url="ftp://example.org/x"))  # type: ignore[call-arg]
