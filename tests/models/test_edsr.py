import pytest
import torch

from models.edsr import EDSR, EDSRConfig


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_scale_times_the_input(scale: int) -> None:
    network = EDSR(EDSRConfig(scale=scale, n_resblocks=2, n_feats=8))
    out = network(torch.rand(2, 3, 11, 7) * 255)
    assert out.shape == (2, 3, 11 * scale, 7 * scale)


def test_unsupported_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="scale must be 2, 3 or 4"):
        EDSRConfig(scale=5)


def test_study_depths_map_to_block_counts() -> None:
    # The study counted conv layers; 2 per residual block plus head, body and tail convs.
    assert EDSRConfig.from_layers(25).n_resblocks == 11
    assert EDSRConfig.from_layers(60).n_resblocks == 28
    assert EDSRConfig.from_layers(35).layers == 35


def test_rgb_mean_is_a_buffer_not_a_parameter() -> None:
    network = EDSR(EDSRConfig(n_resblocks=1, n_feats=4))
    assert "rgb_mean" in network.state_dict()
    assert all(name != "rgb_mean" for name, _ in network.named_parameters())


def test_residual_scaling_and_block_count_follow_the_config() -> None:
    network = EDSR(EDSRConfig(n_resblocks=5, n_feats=4, res_scale=0.1))
    blocks = network.body[:-1]
    assert len(blocks) == 5
    assert all(block.res_scale == 0.1 for block in blocks)
