import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.checkpoint import load_model, read_metadata, save_model
from models.edsr import EDSR, EDSRConfig


def test_model_file_rebuilds_the_same_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = EDSR(EDSRConfig(scale=3, n_resblocks=2, n_feats=8, res_scale=0.5)).eval()
    sha = save_model(
        tmp_path / "m.safetensors", network, name="t", degradation_id="d/v1", extra={"step": 7}
    )
    loaded, info = load_model(tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 9, 9) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), network(x), rtol=0, atol=0)
    assert info.config == network.config
    assert (info.name, info.degradation_id, info.weights_sha256, info.extra) == (
        "t",
        "d/v1",
        sha,
        {"step": 7},
    )


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_loading_is_strict(tmp_path: Path, change: str) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, EDSR(EDSRConfig(n_resblocks=1, n_feats=4)), name="t", degradation_id="d")
    tensors, metadata = load_file(str(path)), read_metadata(path)
    if change == "missing":
        tensors.pop("head.weight")
    else:
        tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(RuntimeError, match=r"Missing key|Unexpected key"):
        load_model(path)


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="not a cctv-archive model file"):
        load_model(path)
    assert json.loads(json.dumps(read_metadata(path))) == {"format": "something-else"}
