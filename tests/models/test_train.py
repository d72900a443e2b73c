import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.checkpoint import load_model
from models.cli import main as cli
from models.data import PatchSampler, load_pairs
from models.degradation import Profile, bicubic_upscale
from models.metrics import psnr_y
from models.restorer import Restorer
from models.train import TrainConfig, lr_factor, main
from tests.models.conftest import scene


def tiny_config(folder: Path, out: Path, **overrides: object) -> TrainConfig:
    base = dict(
        data=[str(folder)],
        val=str(folder),
        out=str(out),
        profile="native:2:png",
        n_resblocks=2,
        n_feats=16,
        patch=16,
        batch=8,
        steps=60,
        lr=2e-3,
        val_every=30,
        log_every=10,
        name="tiny",
    )
    return TrainConfig(**{**base, **overrides})  # type: ignore[arg-type]


def test_a_tiny_model_overfits_one_image_past_bicubic(tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(scene(64, 64, seed=5)).save(folder / "frame.png")
    best = main(tiny_config(folder, tmp_path / "run", steps=200, val_every=100))

    pair = load_pairs(folder, Profile.parse("native:2:png"), progress=False)[0]
    restored = Restorer.from_pretrained(str(best)).restore([pair.lr])[0]
    bicubic = psnr_y(bicubic_upscale(pair.lr, 2), pair.hr, 2)
    assert psnr_y(restored, pair.hr, 2) > bicubic + 0.5
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["psnr_y"] > history[0]["psnr_y"]
    assert (tmp_path / "run" / "tb").is_dir()


def test_a_resumed_run_ends_exactly_where_a_straight_run_does(
    image_folder: Path, tmp_path: Path
) -> None:
    straight = main(tiny_config(image_folder, tmp_path / "straight", steps=20, val_every=10))
    # The same 20-step run, killed right after its step-10 checkpoint and resumed from it.
    halves = tiny_config(image_folder, tmp_path / "halves", steps=20, val_every=10)
    _run_until(halves, stop_at=10)
    resumed = main(
        tiny_config(
            image_folder,
            tmp_path / "halves",
            steps=20,
            val_every=10,
            resume=str(tmp_path / "halves" / "last.pt"),
        )
    )
    a, _ = load_model(tmp_path / "straight" / "last.safetensors")
    b, _ = load_model(tmp_path / "halves" / "last.safetensors")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    assert straight.name == resumed.name == "best.safetensors"


def _run_until(config: TrainConfig, stop_at: int) -> None:
    """Run `config` but kill it right after the checkpoint at `stop_at` (as a crash would)."""

    class Stop(Exception):
        pass

    original = torch.save

    def save_then_stop(obj: object, path: object, *args: object, **kwargs: object) -> None:
        original(obj, path, *args, **kwargs)
        if isinstance(obj, dict) and obj.get("step") == stop_at:
            raise Stop

    torch.save = save_then_stop  # type: ignore[assignment]
    try:
        with pytest.raises(Stop):
            main(config)
    finally:
        torch.save = original  # type: ignore[assignment]


def test_learning_rate_decays_from_the_start_value_to_the_final_ratio() -> None:
    config = TrainConfig(data=[], val="", steps=100, lr_final_ratio=0.01)
    assert lr_factor(0, config) == pytest.approx(1.0)
    assert lr_factor(50, config) == pytest.approx(0.505)
    assert lr_factor(100, config) == pytest.approx(0.01)


def test_patches_are_aligned_and_repeatable(image_folder: Path) -> None:
    pairs = load_pairs(image_folder, Profile.parse("native:2:png"), progress=False)
    lr1, hr1 = PatchSampler(pairs, scale=2, patch=12, seed=3).batch(4)
    lr2, hr2 = PatchSampler(pairs, scale=2, patch=12, seed=3).batch(4)
    assert lr1.shape == (4, 3, 12, 12) and hr1.shape == (4, 3, 24, 24)
    assert torch.equal(lr1, lr2) and torch.equal(hr1, hr2)
    # Each LR patch is the HR patch downsampled: aligned crops, same flips and rotations.
    profile = Profile.parse("native:2:png")
    for lr, hr in zip(lr1, hr1, strict=True):
        hr_image = Image.fromarray(hr.permute(1, 2, 0).byte().numpy())
        expected = np.asarray(profile.downsample(hr_image)).astype(int)
        got = lr.permute(1, 2, 0).numpy().astype(int)
        # Inside the patch (away from its edge, where the kernel saw beyond it) the pixels agree.
        assert np.abs(expected[2:-2, 2:-2] - got[2:-2, 2:-2]).max() <= 1


def test_cli_trains_and_evaluates(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-run"
    assert (
        cli(
            [
                "train",
                "--data",
                str(image_folder),
                "--val",
                str(image_folder),
                "--out",
                str(out),
                "--profile",
                "native:2:png",
                "--n-resblocks",
                "1",
                "--n-feats",
                "8",
                "--patch",
                "16",
                "--batch",
                "2",
                "--steps",
                "4",
                "--val-every",
                "2",
                "--name",
                "cli-tiny",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        cli(
            [
                "evaluate",
                "--model",
                str(out / "best.safetensors"),
                "--data",
                str(image_folder),
                "--profile",
                "native:2:png",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "cli-tiny" and result["images"] == 3
    for key in ("psnr_y", "psnr_y_bicubic", "ssim", "ssim_bicubic", "psnr_rgb", "psnr_rgb_bicubic"):
        assert isinstance(result[key], float)
    assert len(result["per_image"]) == 3
