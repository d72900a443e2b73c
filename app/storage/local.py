"""Blobs as files in one local folder: the embedded default."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.errors import BlobExists, BlobNotFound, StorageUnavailable
from app.storage.base import PROBE_BYTES, check_key

_TMP_PREFIX = ".tmp-"


class LocalStore:
    """Each key is a file under `root`. Writes go to a temporary file in the same folder, are
    fsynced, and are then linked into place, so a reader or a crash never sees half a blob and an
    existing blob is never replaced."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to {self.root}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            # link() fails if the name exists: create-if-absent in one atomic step.
            os.link(tmp, path)
        except FileExistsError as exc:
            raise BlobExists(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot write blob {key!r}: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise BlobNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read blob {key!r}: {exc.strerror}") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete blob {key!r}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(_TMP_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def modified_at(self, key: str) -> float:
        """When the blob was written (Unix time); `verify` leaves young orphans alone."""
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def check(self) -> None:
        """A small blob's worth of bytes written and fsynced (an empty file can still be made on
        a full disk), then removed."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(prefix=_TMP_PREFIX, dir=self.root) as probe:
                probe.write(PROBE_BYTES)
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            raise StorageUnavailable(
                f"blob folder {self.root} cannot take a small write: {exc.strerror}"
            ) from exc

    def free_bytes(self) -> int | None:
        """Free space on the blob folder's disk."""
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)


def _fsync_dir(path: Path) -> None:
    """Make the new directory entry durable too (the file's own fsync does not cover it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
