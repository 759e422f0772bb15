"""Sliding-window inference: coverage, weighting, and agreement with whole-volume prediction."""

import pytest
import torch

from lesionres.inference import gaussian_weight, sliding_window, window_starts
from lesionres.models import UNet3D


def test_window_starts_cover_the_axis():
    assert window_starts(10, 16, 0.5) == [0]
    assert window_starts(100, 48, 0.5) == [0, 24, 48, 52]
    for size, window in [(97, 32), (64, 64), (65, 64)]:
        starts = window_starts(size, window, 0.5)
        covered = set()
        for s in starts:
            covered |= set(range(s, s + window))
        assert covered == set(range(size))


def test_gaussian_weight_peaks_in_the_centre():
    w = gaussian_weight((9, 9, 9))
    assert w[4, 4, 4] == w.max() == 1
    assert w[0, 0, 0] >= 1e-3


@pytest.mark.parametrize("weighting", ["gaussian", "hann", "constant"])
def test_pointwise_model_is_reproduced_exactly(weighting):
    volume = torch.randn(2, 1, 20, 17, 13)
    out = sliding_window(lambda x: 3 * x + 1, volume, (8, 8, 8), 0.5, weighting, batch_size=3)
    torch.testing.assert_close(out, 3 * volume + 1)


def test_window_covering_the_volume_equals_full_volume_prediction():
    torch.manual_seed(0)
    net = UNet3D(base_channels=2, depth=2, norm="instance").eval()
    volume = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        full = net(volume)
        tiled = sliding_window(net, volume, (16, 16, 16), 0.5)
    torch.testing.assert_close(tiled, full)


def test_overlapping_windows_stay_close_to_full_volume_for_a_local_model():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 1, 3, padding=1)
    volume = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        full = conv(volume)
        tiled = sliding_window(conv, volume, (16, 16, 16), 0.5)
    interior = (slice(None), slice(None), slice(1, -1), slice(1, -1), slice(1, -1))
    # only voxels at window borders differ (zero padding inside a window)
    assert (tiled[interior] - full[interior]).abs().mean() < 0.05
