from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import save_model
from models.edsr import EDSR, EDSRConfig
from models.restorer import Restorer, receptive_radius
from tests.models.conftest import scene


def tiny(scale: int = 2, **kwargs: object) -> Restorer:
    return Restorer.from_config(EDSRConfig(scale=scale, n_resblocks=2, n_feats=8), **kwargs)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_restore_returns_uint8_frames_scale_times_larger(scale: int) -> None:
    out = tiny(scale).restore([scene(20, 30), scene(16, 16)])
    assert [o.shape for o in out] == [(20 * scale, 30 * scale, 3), (16 * scale, 16 * scale, 3)]
    assert all(o.dtype == np.uint8 for o in out)


def test_batches_of_mixed_sizes_come_back_in_order() -> None:
    restorer = tiny(batch_size=2)
    frames = [scene(20, 20, seed=i) if i % 2 else scene(24, 18, seed=i) for i in range(5)]
    together = restorer.restore(frames)
    one_by_one = [restorer.restore([f])[0] for f in frames]
    for a, b in zip(together, one_by_one, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float reassociation only


def test_outputs_are_clamped_not_wrapped() -> None:
    restorer = tiny()
    with torch.no_grad():  # push every output far above 255 and far below 0
        restorer.network.tail[-1].bias.copy_(torch.tensor([1000.0, -1000.0, 1000.0]))
    out = restorer.restore([scene(10, 10)])[0]
    assert (out[..., 0] == 255).all() and (out[..., 1] == 0).all() and (out[..., 2] == 255).all()


def test_tiles_give_the_same_pixels_as_the_whole_frame() -> None:
    whole = tiny(tile=512).restore([scene(90, 130)])[0]
    restorer = tiny(tile=32)
    assert restorer.overlap == receptive_radius(restorer.info.config)
    tiled = restorer.restore([scene(90, 130)])[0]
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_from_pretrained_loads_a_model_file_by_path(tmp_path: Path) -> None:
    network = EDSR(EDSRConfig(n_resblocks=1, n_feats=4))
    sha = save_model(tmp_path / "m.safetensors", network, name="file-model", degradation_id="x/v1")
    restorer = Restorer.from_pretrained(str(tmp_path / "m.safetensors"))
    assert (restorer.name, restorer.weights_sha256, restorer.degradation_id) == (
        "file-model",
        sha,
        "x/v1",
    )
    # No device asked for: CUDA where there is one, else the CPU (never silently elsewhere).
    assert restorer.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unknown_model_name_says_where_it_looked() -> None:
    with pytest.raises(FileNotFoundError, match=r"no-such-model\.safetensors"):
        Restorer.from_pretrained("no-such-model")


def test_frames_of_the_wrong_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="expected HxWx3 uint8"):
        tiny().restore([np.zeros((8, 8), dtype=np.uint8)])


def count_forwards(restorer: Restorer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of every forward pass the restorer makes."""
    calls: list[int] = []
    forward = restorer._forward

    def counted(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return forward(batch)

    monkeypatch.setattr(restorer, "_forward", counted)
    return calls


def test_tiles_of_one_shape_go_through_the_network_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restorer = tiny(tile=32, batch_size=16)
    calls = count_forwards(restorer, monkeypatch)
    restorer.restore([scene(90, 130)])
    # 3 x 5 tiles grown by the overlap (8): heights 40, 48, 34 and widths 40, 48, 48, 42, 10,
    # so 12 shapes, the 48-wide pair in each row sharing a pass.
    assert sorted(calls) == [1] * 9 + [2] * 3


def test_a_native_640x360_frame_runs_whole_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    restorer = tiny()
    calls = count_forwards(restorer, monkeypatch)
    out = restorer.restore([scene(360, 640)])[0]
    assert calls == [1] and out.shape == (720, 1280, 3)


def reference_ensemble(restorer: Restorer, frame: np.ndarray, views: int) -> np.ndarray:
    """Self-ensemble written out by hand: each view through the network, back, averaged."""
    transforms = [
        (lambda a: a, lambda a: a),
        (np.fliplr, np.fliplr),
        (np.flipud, np.flipud),
        (lambda a: a[::-1, ::-1], lambda a: a[::-1, ::-1]),
        (lambda a: a.transpose(1, 0, 2), lambda a: a.transpose(1, 0, 2)),
        (lambda a: a.transpose(1, 0, 2)[:, ::-1], lambda a: a[:, ::-1].transpose(1, 0, 2)),
        (lambda a: a.transpose(1, 0, 2)[::-1], lambda a: a[::-1].transpose(1, 0, 2)),
        (lambda a: a.transpose(1, 0, 2)[::-1, ::-1], lambda a: a[::-1, ::-1].transpose(1, 0, 2)),
    ][:views]
    outs = []
    with torch.inference_mode():
        for forward, back in transforms:
            x = torch.tensor(np.ascontiguousarray(forward(frame))).permute(2, 0, 1)[None].float()
            outs.append(back(restorer.network(x)[0].permute(1, 2, 0).numpy()))
    return np.clip(np.rint(np.mean(outs, axis=0)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("views", [2, 4, 8])
def test_self_ensemble_averages_every_view_flipped_back(views: int) -> None:
    frame = scene(20, 28)  # not square: the transposed views change shape
    restorer = tiny(ensemble=views)
    out = restorer.restore([frame])[0]
    expected = reference_ensemble(restorer, frame, views)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    single = tiny().restore([frame])[0]
    assert np.abs(out.astype(int) - single.astype(int)).max() > 1  # the views really differ


def test_the_ensemble_is_named_in_the_engine_and_refuses_other_counts() -> None:
    assert tiny().engine == "torch"
    restorer = tiny(ensemble=2)
    assert (restorer.backend, restorer.engine) == ("torch", "torch+ensemble-x2")
    with pytest.raises(ValueError, match="ensemble must be one of"):
        tiny(ensemble=3)


def test_tiles_of_an_ensemble_give_the_same_pixels_as_the_whole_frame() -> None:
    whole = tiny(tile=512, ensemble=8).restore([scene(90, 130)])[0]
    tiled = tiny(tile=32, ensemble=8).restore([scene(90, 130)])[0]
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
