"""benchmarks/restore_cpu.py: its plain way is the network itself, and its quality figure is the
archive's PSNR-Y (no change when the served path is torch too)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from models.edsr import EDSRConfig
from models.restorer import Restorer
from tests.benchmarks.scripts import load_script
from tests.models.conftest import scene


@pytest.fixture(scope="module")
def cpu() -> ModuleType:
    return load_script("restore_cpu.py", "cpu_bench")


def tiny(**kwargs: object) -> Restorer:
    return Restorer.from_config(EDSRConfig(n_resblocks=1, n_feats=8), **kwargs)


def test_the_plain_way_is_the_eager_network_on_whole_frames(cpu: ModuleType) -> None:
    restorer = tiny(tile=16)  # the served path tiles this frame; the plain way never does
    frame = scene(30, 40)
    with torch.no_grad():
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().contiguous()  # NCHW
        expected = restorer.network(x).clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0)
    assert np.array_equal(cpu.plain_restore(restorer, [frame])[0], expected.numpy())
    assert np.abs(restorer.restore([frame])[0].astype(int) - expected.numpy()).max() <= 1


def test_every_size_and_batch_gets_a_row(cpu: ModuleType) -> None:
    rows = cpu.speed(tiny(), tiny(tile=16), [(20, 30)], [1, 2], repeat=1, ensemble=2)
    assert [(r.frame, r.batch, r.ensemble) for r in rows] == [("30x20", 1, 2), ("30x20", 2, 2)]
    assert all(r.speedup == r.plain_s / r.served_s for r in rows)
    assert "ensemble x2" in cpu.speed_table(rows, "torch")


def test_one_pass_as_served_is_the_served_column(cpu: ModuleType) -> None:
    rows = cpu.speed(tiny(), tiny(tile=16), [(20, 30)], [1], repeat=1, ensemble=1)
    assert [(r.ensemble, r.as_served_s) for r in rows] == [(1, rows[0].served_s)]
    header, rule, row = cpu.speed_table(rows, "torch").splitlines()
    assert "as served" not in header and header.count("|") == rule.count("|") == row.count("|")


def test_as_served_runs_the_ensemble_on_the_same_network(cpu: ModuleType) -> None:
    restorer = tiny()
    twice = cpu.with_ensemble(restorer, 2)
    assert (restorer.ensemble, twice.ensemble, twice.engine) == (1, 2, "torch+ensemble-x2")
    assert twice.network is restorer.network


def test_quality_is_unchanged_when_the_served_path_is_torch(
    cpu: ModuleType, tmp_path: Path
) -> None:
    for seed in range(3):
        Image.fromarray(scene(400, 400, seed=seed)).save(tmp_path / f"{seed}.png")
    row = cpu.quality(tiny(), tmp_path, every=2)
    assert row.images == 2
    # The same fp32 network; the served path keeps the frames channels-last in memory, whose
    # convolutions sum in another order on some CPUs (AVX2): a pixel may round the other way.
    assert abs(row.delta_db) < 1e-3 and 5 < row.plain_db < 60


def test_the_choice_line_says_what_auto_timed_and_serves(cpu: ModuleType) -> None:
    restorer = tiny()
    assert cpu.choice_line(restorer) == ""  # no choice made: nothing to say
    restorer.engine_ms = {"openvino-bf16": 253.2, "openvino-int8": 142.3}
    restorer.backend = "openvino-int8"
    assert cpu.choice_line(restorer) == (
        "`auto` timed one 200x200 frame at load: openvino-bf16 253 ms, openvino-int8 142 ms; "
        "it serves openvino-int8."
    )
