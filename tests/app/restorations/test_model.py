"""The model: CCTV_RESTORE_BATCH_SIZE and CCTV_RESTORE_ENSEMBLE reach the network, and every
restore in a server goes through its one owner (the model thread), housekeeping included."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from app.config import Settings
from app.frames.models import Frame
from app.restorations.cache import provenance_of
from app.restorations.model import load_restorer
from app.restorations.provenance import Method
from app.runtime import housekeeping
from models import EDSR, EDSRConfig, Restorer, engines, save_model
from models.metrics import psnr
from models.restorer import SERVED_ENSEMBLE
from tests.app.images import image_bytes, scene


def test_the_configured_batch_size_is_what_the_network_runs(
    tmp_path: Path, settings_with: Any
) -> None:
    model = tmp_path / "tiny.safetensors"
    network = EDSR(EDSRConfig(n_resblocks=1, n_feats=8))
    save_model(model, network, name="tiny-file", degradation_id="bicubic-aa-x2/png/v1")
    for ensemble, expected in ((1, [3, 3, 1]), (2, [3, 3, 3, 3, 1, 1])):
        settings = settings_with(
            model=str(model),
            restore_batch_size=3,
            restore_engine="torch",
            restore_ensemble=ensemble,
        )
        restorer = load_restorer(settings)
        batches: list[int] = []
        restorer.network.register_forward_pre_hook(
            lambda _, inputs, batches=batches: batches.append(len(inputs[0]))
        )

        frames = [scene(16, 12, seed) for seed in range(7)]
        restored = restorer.restore(frames)

        assert batches == expected  # not the Restorer's default of 8; one pass per view
        assert [frame.shape for frame in restored] == [(24, 32, 3)] * 7


def test_the_service_restores_in_one_pass_by_default(tmp_path: Path, settings_with: Any) -> None:
    model = tmp_path / "tiny.safetensors"
    save_model(model, EDSR(EDSRConfig(n_resblocks=1, n_feats=8)), name="t", degradation_id="x")
    restorer = load_restorer(settings_with(model=str(model), restore_engine="torch"))
    assert Settings().restore_ensemble == SERVED_ENSEMBLE == restorer.ensemble == 1
    assert restorer.engine == "torch"


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


def test_the_configured_engine_serves_and_is_named_in_the_provenance(
    tmp_path: Path, settings_with: Any
) -> None:
    pytest.importorskip("onnxruntime", reason="the int8 engines need the int8 extra")
    model = tmp_path / "small.safetensors"
    # int8 error depends on the weights: the same ones in every order (tests/models/test_engines)
    torch.manual_seed(0)
    save_model(model, EDSR(EDSRConfig(n_resblocks=2, n_feats=16)), name="small", degradation_id="x")
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for seed in range(6):
        Image.fromarray(scene(400, 400, seed)).save(calibration / f"{seed}.png")
    settings = settings_with(
        model=str(model),
        restore_engine="onnx-int8",
        restore_calibration_dir=calibration,
        restore_ensemble=2,  # the provenance names the passes too
    )
    restorer = load_restorer(settings)
    plain = load_restorer(
        settings_with(model=str(model), restore_engine="torch", restore_ensemble=2)
    )
    assert (restorer.engine, plain.engine) == ("onnx-int8+ensemble-x2", "torch+ensemble-x2")

    frame = scene(40, 40, 99)
    restored, reference = restorer.restore([frame])[0], plain.restore([frame])[0]
    assert psnr(restored, reference) >= engines.AGREEMENT_DB  # same weights, int8 arithmetic
    stored = Frame(
        id="f" * 32, original_sha256="a" * 64, stored_sha256="b" * 64, degradation_id="x"
    )
    assert provenance_of(stored, Method.edsr, restorer).fields()["Restoration-Engine"] == (
        "onnx-int8+ensemble-x2"
    )
    assert provenance_of(stored, Method.bicubic, restorer).fields()["Restoration-Engine"] == "none"
