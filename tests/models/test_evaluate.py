import json
from pathlib import Path

import pytest

from models.cli import main
from models.degradation import Profile
from models.edsr import EDSRConfig
from models.evaluate import evaluate
from models.restorer import Restorer


def test_set5_bicubic_reproduces_the_published_figure(shared_data: Path) -> None:
    """The protocol check: bicubic x2 on Set5 is 33.66 dB PSNR-Y in the published tables."""
    _, totals = evaluate(None, shared_data / "benchmarks" / "Set5", Profile.parse("benchmark"))
    assert totals["psnr_y_bicubic"] == pytest.approx(33.66, abs=0.1)


def test_set14_bicubic_reproduces_the_published_figure(shared_data: Path) -> None:
    _, totals = evaluate(None, shared_data / "benchmarks" / "Set14", Profile.parse("benchmark"))
    assert totals["psnr_y_bicubic"] == pytest.approx(30.24, abs=0.1)


def test_model_and_bicubic_are_scored_on_the_same_images(image_folder: Path) -> None:
    restorer = Restorer.from_config(EDSRConfig(n_resblocks=1, n_feats=4))
    scores, totals = evaluate(restorer, image_folder, Profile())
    assert [s.image for s in scores] == ["cam-1/000.png", "cam-1/001.png", "cam-1/002.png"]
    assert totals["psnr_y_bicubic"] == pytest.approx(sum(s.psnr_y_bicubic for s in scores) / 3)
    # An untrained network is far worse than bicubic: the columns are not swapped or shared.
    assert totals["psnr_y"] < totals["psnr_y_bicubic"] - 3


def test_the_cli_measures_the_engine_it_is_given(
    image_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--engine auto` measures what the service serves on a CPU (OpenVINO bf16 or the shipped
    int8 file, whichever `auto` timed faster; int8 where the CPU has no native bf16) and says so;
    the default stays the exact torch path."""
    pytest.importorskip("openvino", reason="the int8 engines need the int8 extra")
    from models import engines

    results = {}
    for engine in ("torch", "auto"):
        assert main(["evaluate", "--data", str(image_folder), "--engine", engine, "--json"]) == 0
        results[engine] = json.loads(capsys.readouterr().out)
    assert (results["torch"]["backend"], results["torch"]["ensemble"]) == ("torch", 1)
    assert results["torch"]["engine"] == "torch"  # one pass, as the service serves
    fast = {"openvino-bf16", "openvino-int8"} if engines.native_bf16() else {"openvino-int8"}
    assert results["auto"]["backend"] in fast
    # The same frames and bicubic; other pixels from the network (bf16 or int8, not fp32).
    assert results["auto"]["psnr_y_bicubic"] == results["torch"]["psnr_y_bicubic"]
    assert results["auto"]["psnr_y"] != results["torch"]["psnr_y"]


def test_the_cli_measures_one_pass_or_a_self_ensemble(
    image_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {}
    for ensemble in ("1", "2"):
        args = ["evaluate", "--data", str(image_folder), "--ensemble", ensemble, "--json"]
        assert main(args) == 0
        results[ensemble] = json.loads(capsys.readouterr().out)
    assert [results[e]["engine"] for e in ("1", "2")] == ["torch", "torch+ensemble-x2"]
    assert results["1"]["psnr_y_bicubic"] == results["2"]["psnr_y_bicubic"]
    assert results["1"]["psnr_y"] != results["2"]["psnr_y"]
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", str(image_folder), "--ensemble", "3"])


def test_the_cli_refuses_an_unknown_engine(image_folder: Path) -> None:
    with pytest.raises(SystemExit, match="unknown engine"):
        main(["evaluate", "--data", str(image_folder), "--engine", "tensorrt"])
