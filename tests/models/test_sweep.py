import json
from pathlib import Path

from PIL import Image

from models.cli import main as cli


def test_sweep_trains_each_depth_and_draws_the_plot(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert (
        cli(
            [
                "sweep",
                "--data",
                str(image_folder),
                "--val",
                str(image_folder),
                "--layers",
                "5,7",
                "--n-feats",
                "4",
                "--steps",
                "2",
                "--batch",
                "2",
                "--patch",
                "16",
                "--profile",
                "native:2:png",
                "--out",
                str(out),
                "--note",
                "test",
            ]
        )
        == 0
    )
    rows = json.loads((out / "sweep.json").read_text())
    assert [(r["layers"], r["n_resblocks"]) for r in rows] == [(5, 1), (7, 2)]
    for r in rows:  # each row is the best of its own run's validation history
        history = json.loads((out / f"layers-{r['layers']}" / "history.json").read_text())
        assert r["val_psnr_y"] == max(h["psnr_y"] for h in history)
    with Image.open(out / "sweep.png") as plot:
        assert plot.size == (1000, 420)
