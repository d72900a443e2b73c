"""The model: CCTV_RESTORE_BATCH_SIZE reaches the network, and every restore in a server goes
through its one owner (the model thread), housekeeping included."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.restorations.model import load_restorer
from app.runtime import housekeeping
from models import EDSR, EDSRConfig, Restorer, save_model
from tests.app.images import image_bytes, scene


def test_the_configured_batch_size_is_what_the_network_runs(
    tmp_path: Path, settings_with: Any
) -> None:
    model = tmp_path / "tiny.safetensors"
    network = EDSR(EDSRConfig(n_resblocks=1, n_feats=8))
    save_model(model, network, name="tiny-file", degradation_id="bicubic-aa-x2/png/v1")
    settings = settings_with(model=str(model), restore_batch_size=3)
    restorer = load_restorer(settings)
    batches: list[int] = []
    restorer.network.register_forward_pre_hook(lambda _, inputs: batches.append(len(inputs[0])))

    frames = [scene(16, 12, seed) for seed in range(7)]
    restored = restorer.restore(frames)

    assert batches == [3, 3, 1]  # not the Restorer's default of 8
    assert [frame.shape for frame in restored] == [(24, 32, 3)] * 7


class ThreadRecorder:
    """The tiny model, recording which thread called it."""

    def __init__(self, inner: Restorer) -> None:
        self.inner = inner
        self.threads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.threads.append(threading.current_thread().name)
        return self.inner.restore(frames)


def test_jobs_and_housekeeping_use_the_model_only_from_the_model_thread(
    archive_factory: Any, settings_with: Any, tiny_restorer: Restorer
) -> None:
    recorder = ThreadRecorder(tiny_restorer)
    archive = archive_factory(settings_with(audit_sample_rate=1.0), restorer=recorder)
    frame_id = archive.frame_id(image_bytes(width=64, height=48))

    assert archive.get(f"/v1/frames/{frame_id}/restored").status_code == 200  # a restore job
    housekeeping(archive.runtime)  # measures the audit-sample frame, from this test's thread

    assert archive.count("frame_quality") == 1
    assert len(recorder.threads) == 2
    assert set(recorder.threads) == {"restore-model"}
