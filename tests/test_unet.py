"""UNet3D: output shapes for several depths and input sizes; clear error on bad sizes."""

import pytest
import torch

from lesionres.models import UNet3D


@pytest.mark.parametrize(
    ("depth", "shape"),
    [(1, (8, 10, 6)), (2, (16, 12, 8)), (3, (16, 24, 32)), (4, (32, 16, 48))],
)
def test_output_matches_input_shape(depth, shape):
    net = UNet3D(base_channels=2, depth=depth)
    out = net(torch.randn(2, 1, *shape))
    assert out.shape == (2, 1, *shape)


@pytest.mark.parametrize("norm", ["instance", "batch", "group", "none"])
def test_norms_and_dropout_build_and_backpropagate(norm):
    net = UNet3D(base_channels=4, depth=2, norm=norm, dropout=0.1)
    out = net(torch.randn(2, 1, 8, 8, 8))
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_indivisible_input_is_rejected_with_advice():
    with pytest.raises(ValueError, match="divisible by 8"):
        UNet3D(base_channels=2, depth=3)(torch.randn(1, 1, 12, 16, 16))


def test_skip_connections_double_decoder_input():
    net = UNet3D(base_channels=4, depth=2)
    assert net.decoder[0][0].in_channels == 16  # up(8 from 16) + skip(8)
    assert net.decoder[-1][0].in_channels == 8


def test_untrained_network_predicts_its_output_prior():
    torch.manual_seed(0)
    image = torch.randn(2, 1, 16, 16, 16)
    prior = UNet3D(base_channels=4, depth=2, norm="batch", output_prior=0.01)
    assert abs(torch.sigmoid(prior(image)).median().item() - 0.01) < 0.005
    plain = UNet3D(base_channels=4, depth=2, norm="batch", output_prior=None)
    assert 0.2 < torch.sigmoid(plain(image)).median().item() < 0.8  # near 0.5: no prior
    with pytest.raises(ValueError, match="output_prior"):
        UNet3D(output_prior=1.0)
