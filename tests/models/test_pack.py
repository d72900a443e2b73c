import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.checkpoint import load_model
from models.degradation import Profile
from models.gpu_train import main as gpu_train
from models.pack import pack, read_pack
from models.train import TrainConfig, main
from tests.models.conftest import scene


@pytest.fixture
def cameras(tmp_path: Path) -> Path:
    root = tmp_path / "train"
    for cam in ("cam-a", "cam-b"):
        (root / cam).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(scene(60, 80, seed=i + (10 if cam == "cam-b" else 0))).save(
                root / cam / f"{i:03d}.png"
            )
    return root


def test_pack_holds_canonical_hr_frames_losslessly_and_degrades_them_like_training(
    cameras: Path, image_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pack.zip"
    manifest = pack(out, data=[str(cameras)], val=[str(image_folder)], profile="64:2:png")
    assert manifest["frames"]["train"] == sorted(
        f"{cam}/{i:03d}.png" for cam in ("cam-a", "cam-b") for i in range(4)
    )
    assert manifest["left_out"] == []
    train, native, val = read_pack(out, "64:2:png")
    assert native == [] and set(val) == {"frames"} and len(val["frames"]) == 3
    profile = Profile.parse("64:2:png")
    with Image.open(cameras / "cam-a" / "000.png") as image:
        hr = profile.canonicalise(image)
    first = train[0]
    assert np.array_equal(first.hr, np.asarray(hr))  # lossless: the same pixels
    assert np.array_equal(first.lr, profile.degrade(hr))
    with zipfile.ZipFile(out) as z:
        assert json.loads(z.read("manifest.json"))["profile"] == "64:2:png"


def test_a_tight_budget_keeps_every_camera_and_says_what_was_left_out(
    cameras: Path, image_folder: Path, tmp_path: Path
) -> None:
    full = pack(tmp_path / "full.zip", data=[str(cameras)], val=[str(image_folder)])
    val_bytes = full["bytes"] - sum(
        len(z.read(n))
        for z in [zipfile.ZipFile(tmp_path / "full.zip")]
        for n in z.namelist()
        if n.startswith("train/")
    )
    budget = val_bytes + (full["bytes"] - val_bytes) // 3
    small = pack(tmp_path / "s.zip", data=[str(cameras)], val=[str(image_folder)], max_bytes=budget)
    kept = small["frames"]["train"]
    assert 2 <= len(kept) < 8 and small["bytes"] <= budget
    assert {name.split("/")[0] for name in kept} == {"cam-a", "cam-b"}
    assert len(kept) + len(small["left_out"]) == 8
    assert (tmp_path / "s.zip").stat().st_size <= budget + 4096  # zip framing


def test_val_limit_keeps_that_many_validation_frames_from_every_camera(
    cameras: Path, tmp_path: Path
) -> None:
    manifest = pack(tmp_path / "v.zip", data=[str(cameras)], val=[str(cameras)], val_limit=2)
    assert sorted(manifest["frames"]["val/train"]) == ["cam-a/000.png", "cam-b/000.png"]
    assert len(manifest["frames"]["train"]) == 8  # training frames are not limited
    _, _, val = read_pack(tmp_path / "v.zip", "400:2:webp-lossless")
    assert [p.name for p in val["train"]] == sorted(manifest["frames"]["val/train"])


def test_whole_cameras_go_in_entire_before_the_others_are_thinned(
    cameras: Path, image_folder: Path, tmp_path: Path
) -> None:
    val_only = pack(tmp_path / "v.zip", data=[], val=[str(image_folder)])["bytes"]
    full = pack(tmp_path / "full.zip", data=[str(cameras)], val=[str(image_folder)])["bytes"]
    budget = val_only + 5 * (full - val_only) // 8  # about 5 of the 8 training frames
    kept = pack(
        tmp_path / "w.zip",
        data=[str(cameras)],
        val=[str(image_folder)],
        max_bytes=budget,
        whole=["cam-b"],
    )["frames"]["train"]
    assert {f"cam-b/{i:03d}.png" for i in range(4)} <= set(kept)
    assert any(name.startswith("cam-a/") for name in kept) and len(kept) < 8
    with pytest.raises(ValueError, match="--whole names cameras"):
        pack(tmp_path / "x.zip", data=[str(cameras)], val=[str(image_folder)], whole=["cam-z"])


def test_a_pack_made_for_another_size_is_refused(cameras: Path, tmp_path: Path) -> None:
    pack(tmp_path / "p.zip", data=[str(cameras)], val=[str(cameras)], profile="64:2:png")
    with pytest.raises(ValueError, match="packed for profile 64:2:png"):
        read_pack(tmp_path / "p.zip", "400:2:png")


def test_a_draft_profile_is_not_packed_its_lr_needs_the_original_files(
    cameras: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="from the original files"):
        pack(tmp_path / "d.zip", data=[str(cameras)], val=[str(cameras)], profile="fast")
    assert not (tmp_path / "d.zip").exists()
    pack(tmp_path / "p.zip", data=[str(cameras)], val=[str(cameras)])
    with pytest.raises(ValueError, match="cctv-archive train --data"):
        read_pack(tmp_path / "p.zip", "400:2:webp-lossless:draft")


def test_training_reads_a_pack(cameras: Path, image_folder: Path, tmp_path: Path) -> None:
    pack(tmp_path / "p.zip", data=[str(cameras)], val=[str(image_folder)], profile="64:2:png")
    config = TrainConfig(
        data=[],
        val=[],
        pack=str(tmp_path / "p.zip"),
        out=str(tmp_path / "run"),
        profile="64:2:png",
        n_resblocks=1,
        n_feats=8,
        patch=16,
        batch=2,
        steps=4,
        val_every=2,
    )
    main(config)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["train_images"] == 8 and run["val_images"] == {"frames": 3}


def test_gpu_script_runs_on_the_cpu_and_leaves_weights_log_and_curve(
    cameras: Path, image_folder: Path, tmp_path: Path
) -> None:
    pack(tmp_path / "p.zip", data=[str(cameras)], val=[str(image_folder)], profile="64:2:png")
    out = tmp_path / "gpu"
    argv = [
        "--pack",
        str(tmp_path / "p.zip"),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--profile",
        "64:2:png",
        "--n-resblocks",
        "1",
        "--n-feats",
        "8",
        "--batch",
        "2",
        "--patch",
        "16",
        "--steps",
        "6",
        "--validations",
        "3",
    ]
    assert gpu_train(argv) == 0
    for name in ("best.safetensors", "last.safetensors", "log.txt", "history.json", "curve.png"):
        assert (out / name).is_file(), name
    assert "best model" in (out / "log.txt").read_text()
    assert len(json.loads((out / "history.json").read_text())) == 3
    with Image.open(out / "curve.png") as curve:
        assert curve.size == (1100, 520)


def test_gpu_script_distils_from_a_teacher(
    cameras: Path, image_folder: Path, tmp_path: Path
) -> None:
    pack(tmp_path / "p.zip", data=[str(cameras)], val=[str(image_folder)], profile="64:2:png")
    common = ["--pack", str(tmp_path / "p.zip"), "--device", "cpu", "--profile", "64:2:png"]
    tiny = ["--n-resblocks", "1", "--n-feats", "8", "--batch", "2", "--patch", "16"]
    assert gpu_train([*common, *tiny, "--out", str(tmp_path / "t"), "--steps", "2"]) == 0
    teacher = tmp_path / "t" / "best.safetensors"
    student = ["--out", str(tmp_path / "s"), "--steps", "2", "--validations", "1"]
    args = [*common, *tiny, *student, "--teacher", str(teacher), "--teacher-ensemble", "2"]
    assert gpu_train(args) == 0
    _, info = load_model(tmp_path / "s" / "best.safetensors")
    assert info.extra["legs"][-1]["teacher"] == f"{teacher}, 2 views, torch"
    assert "teacher" in (tmp_path / "s" / "log.txt").read_text()
