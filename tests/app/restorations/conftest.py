"""A restorer that waits for the test's go-ahead, for the paths where restoring takes a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from app.config import Settings
from models import Restorer
from tests.app.conftest import Archive


class GatedRestorer:
    """The tiny model, but `restore` blocks until `gate` is set; records each batch size."""

    def __init__(self, inner: Restorer) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.batches: list[int] = []
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(frames))
        self.entered.set()
        if not self.gate.wait(30):
            raise TimeoutError("test never opened the gate")
        return self.inner.restore(frames)


@pytest.fixture
def gated(archive_factory: Any, tiny_restorer: Restorer) -> Iterator[GatedRestorer]:
    # Depends on archive_factory so the gate opens before the apps stop (threads can finish).
    restorer = GatedRestorer(tiny_restorer)
    yield restorer
    restorer.gate.set()


@pytest.fixture
def gated_archive(archive_factory: Any, settings: Settings, gated: GatedRestorer) -> Archive:
    archive: Archive = archive_factory(settings, restorer=gated)
    return archive


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def wait_for_job(archive: Archive, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    job: dict[str, Any] = {}

    def finished() -> bool:
        job.update(archive.get(f"/v1/restore-jobs/{job_id}").json())
        return job["state"] in ("done", "failed")

    wait_for(finished, timeout)
    return job
