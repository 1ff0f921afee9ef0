from __future__ import annotations

import numpy as np
import pytest
import torch

from opsin.eventflow import EVENT_CD
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.warping import (
    Pyramid,
    Warping,
    event_image,
    make_grid2d,
    normalize_flow,
    warp_backward_using_forward_flow,
    warp_events,
    warp_forward_using_forward_flow,
    warp_to_micro_tbin,
    warp_to_tbin,
)


def _image(n: int = 1, c: int = 2, h: int = 9, w: int = 11, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def _constant_flow(n: int, h: int, w: int, u: float, v: float) -> torch.Tensor:
    flow = torch.zeros(n, 2, h, w)
    flow[:, 0] = u
    flow[:, 1] = v
    return flow


def test_normalize_flow_scales_by_half_extent_and_clamps():
    flow = _constant_flow(1, 5, 9, 4.0, -2.0)
    hat = normalize_flow(flow)
    assert torch.allclose(hat[:, 0], torch.full((1, 5, 9), 4.0 * 2 / 8))
    assert torch.allclose(hat[:, 1], torch.full((1, 5, 9), -2.0 * 2 / 4))
    huge = _constant_flow(1, 5, 9, 100.0, -100.0).requires_grad_(True)
    clamped = normalize_flow(huge)
    assert torch.all(clamped[:, 0] == 2.0)
    assert torch.all(clamped[:, 1] == -2.0)
    clamped.sum().backward()
    assert huge.grad is not None
    assert torch.all(huge.grad == 0)


def test_make_grid2d_is_x_then_y_in_minus_one_one():
    grid = make_grid2d(3, 5)
    assert grid.shape == (1, 3, 5, 2)
    assert torch.allclose(grid[0, 0, :, 0], torch.linspace(-1, 1, 5))
    assert torch.allclose(grid[0, :, 0, 1], torch.linspace(-1, 1, 3))


def test_forward_warp_moves_content_along_the_flow():
    x = _image()
    flow = _constant_flow(1, 9, 11, 2.0, 1.0)
    out = warp_forward_using_forward_flow(x, flow)
    # W(x, y) = X(x - 2, y - 1): content moves right by 2 and down by 1, zeros enter from the top-left.
    assert torch.allclose(out[..., 1:, 2:], x[..., :-1, :-2], atol=1e-5)
    assert torch.all(out[..., :, :2] == 0)
    assert torch.all(out[..., :1, :] == 0)
    back = warp_backward_using_forward_flow(x, flow)
    assert torch.allclose(back[..., :-1, :-2], x[..., 1:, 2:], atol=1e-5)


def test_normalized_flag_skips_the_normalisation():
    x = _image()
    flow = _constant_flow(1, 9, 11, 1.5, -0.5)
    expected = warp_forward_using_forward_flow(x, flow)
    got = warp_forward_using_forward_flow(x, normalize_flow(flow), flow_is_normalized=True)
    assert torch.allclose(expected, got)


def test_subpixel_warp_interpolates_bilinearly():
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 1, 8).repeat(1, 1, 3, 1)
    out = warp_forward_using_forward_flow(x, _constant_flow(1, 3, 8, 0.25, 0.0))
    assert torch.allclose(out[..., 1:], x[..., 1:] - 0.25, atol=1e-5)


def test_warp_to_tbin_aligns_a_translating_sequence():
    t, b, h, w = 4, 2, 10, 16
    base = _image(b, 3, h, w)
    seq = torch.zeros(t, b, 3, h, w)
    for i in range(t):
        seq[i, ..., 2 * i :] = base[..., : w - 2 * i]
    flow = _constant_flow(b, h, w, 2.0, 0.0)
    aligned = warp_to_tbin(seq, flow, 3)
    for i in range(t):
        assert torch.allclose(aligned[i, ..., 6:], seq[3, ..., 6:], atol=1e-5)
    back = warp_to_tbin(seq, flow, 0)
    for i in range(t):
        assert torch.allclose(back[i, ..., : w - 6], seq[0, ..., : w - 6], atol=1e-5)


def test_warp_to_micro_tbin_stacks_micro_bins_on_the_target():
    m, p, h, w = 3, 2, 8, 14
    base = _image(1, p, h, w)
    feat = torch.zeros(1, m * p, h, w)
    for k in range(m):
        feat[:, p * k : p * (k + 1), :, k:] = base[..., : w - k]
    # One pixel per micro-bin: M pixels per bin.
    flow = _constant_flow(1, h, w, float(m), 0.0)
    sharp = warp_to_micro_tbin(feat, flow, micro_tbin=0, micro_bins=m)
    for k in range(m):
        assert torch.allclose(sharp[:, p * k : p * (k + 1), :, : w - m], feat[:, :p, :, : w - m], atol=1e-5)
    onto_last = warp_to_micro_tbin(feat, flow, micro_tbin=m - 1, micro_bins=m)
    for k in range(m):
        last = feat[:, p * (m - 1) :, :, m:]
        assert torch.allclose(onto_last[:, p * k : p * (k + 1), :, m:], last, atol=1e-5)
    seq = feat.unsqueeze(0).repeat(2, 1, 1, 1, 1)
    sharp_seq = warp_to_micro_tbin(seq, flow.repeat(2, 1, 1, 1), micro_bins=m)
    assert sharp_seq.shape == seq.shape
    assert torch.allclose(sharp_seq[1], sharp)


def test_warp_to_micro_tbin_rejects_bad_layouts():
    feat = torch.zeros(1, 5, 4, 4)
    with pytest.raises(ConfigError, match="micro-bins"):
        warp_to_micro_tbin(feat, torch.zeros(1, 2, 4, 4), micro_bins=3)
    with pytest.raises(ConfigError, match="micro_tbin"):
        warp_to_micro_tbin(torch.zeros(1, 6, 4, 4), torch.zeros(1, 2, 4, 4), micro_tbin=3, micro_bins=3)
    with pytest.raises(ConfigError, match="differ"):
        warp_forward_using_forward_flow(torch.zeros(1, 6, 4, 4), torch.zeros(1, 2, 4, 5))


def test_warping_rebuilds_its_grid_when_the_resolution_changes():
    warping = Warping()
    for h, w in ((8, 8), (16, 12), (5, 7)):
        x = _image(2, 3, h, w)
        zero = torch.zeros(2, 2, h, w)
        assert torch.allclose(warping.warp_forward(x, zero), x, atol=1e-6)
        flow = _constant_flow(2, h, w, 1.0, 0.0)
        assert torch.allclose(warping.warp_forward(x, flow), warp_forward_using_forward_flow(x, flow))
        assert warping.grid(h, w, x.device, x.dtype).shape == (1, h, w, 2)
    grid = warping.grid(5, 7, torch.device("cpu"), torch.float32)
    assert warping.grid(5, 7, torch.device("cpu"), torch.float32) is grid
    assert warping.grid(5, 7, torch.device("cpu"), torch.float64).dtype == torch.float64
    x64 = _image(1, 1, 5, 7).double()
    assert warping.warp_backward(x64, torch.zeros(1, 2, 5, 7, dtype=torch.float64)).dtype == torch.float64


def test_warp_sequence_uses_each_bins_own_flow():
    t, b, h, w = 3, 2, 6, 10
    seq = torch.rand(t, b, 1, h, w, generator=torch.Generator().manual_seed(3))
    flows = torch.zeros(t * b, 2, h, w)
    for row in range(t * b):
        flows[row, 0] = float(row % 3)
    warped = Warping().warp_sequence_by_one_time_bin(seq, flows)
    for ti in range(t):
        for bi in range(b):
            shift = (ti * b + bi) % 3
            expected = seq[ti, bi, ..., : w - shift]
            assert torch.allclose(warped[ti, bi, ..., shift:], expected, atol=1e-5)


def test_sharpen_micro_tbin_matches_the_function():
    feat = _image(2, 6, 8, 8)
    flow = _constant_flow(2, 8, 8, 1.3, -0.7)
    expected = warp_to_micro_tbin(feat, flow, micro_tbin=1, micro_bins=3)
    assert torch.allclose(Warping().sharpen_micro_tbin(feat, flow, micro_tbin=1, micro_bins=3), expected)


def test_pyramid_levels_coarsest_first_with_aligned_corners():
    pyramid = Pyramid(3)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 1, 16).repeat(2, 3, 4, 8, 1)
    levels = pyramid.compute_all_levels(ramp)
    assert [tuple(level.shape) for level in levels] == [(2, 3, 4, 2, 4), (2, 3, 4, 4, 8), (2, 3, 4, 8, 16)]
    assert levels[-1] is ramp
    # align_corners=True keeps the end pixels: a ramp stays a ramp from 0 to 1.
    assert torch.allclose(levels[0][..., 0, :], torch.linspace(0, 1, 4).expand(2, 3, 4, 4), atol=1e-6)
    flat = pyramid.compute_level(ramp[0], 1)
    assert torch.allclose(flat, levels[1][0])
    assert pyramid.compute_level(ramp, -1) is ramp
    with pytest.raises(ConfigError, match="level"):
        pyramid.compute_level(ramp, 3)
    with pytest.raises(ConfigError):
        Pyramid(0)
    nearest = Pyramid(2, mode="nearest").compute_level(ramp[0], 0)
    assert nearest.shape == (3, 4, 4, 8)


def test_warp_events_moves_events_to_the_reference_time():
    events = np.zeros(3, dtype=EVENT_CD)
    events["x"] = [2, 5, 7]
    events["y"] = [1, 3, 4]
    events["t"] = [0, 25_000, 50_000]
    flow = np.zeros((2, 6, 10), dtype=np.float32)
    flow[0] = 4.0
    flow[1] = -2.0
    xs, ys = warp_events(events, flow, t_ref=50_000, delta_t=50_000)
    assert np.allclose(xs, [6.0, 7.0, 7.0])
    assert np.allclose(ys, [-1.0, 2.0, 4.0])
    xs_t, _ = warp_events(events, torch.from_numpy(flow), t_ref=0, delta_t=50_000)
    assert np.allclose(xs_t, [2.0, 3.0, 3.0])
    with pytest.raises(ConfigError, match="delta_t"):
        warp_events(events, flow, 0, 0)


def test_warp_events_samples_the_flow_bilinearly():
    events = np.zeros(1, dtype=EVENT_CD)
    events["x"] = 1
    flow = np.zeros((2, 2, 4), dtype=np.float64)
    flow[0] = np.arange(4)[None, :] * 2.0
    events_half = {"x": np.array([1.5]), "y": np.array([0.0]), "t": np.array([0.0])}
    xs, _ = warp_events(events_half, flow, t_ref=1.0, delta_t=1.0)
    assert np.allclose(xs, [1.5 + 3.0])


def test_event_image_splats_bilinearly_and_conserves_mass_inside():
    img = event_image(np.array([1.25, 3.0]), np.array([2.5, 0.0]), np.array([4.0, 1.0]), 4, 5)
    assert img.sum() == pytest.approx(5.0)
    assert img[2, 1] == pytest.approx(4.0 * 0.75 * 0.5)
    assert img[3, 2] == pytest.approx(4.0 * 0.25 * 0.5)
    assert img[0, 3] == pytest.approx(1.0)
    outside = event_image(np.array([-0.5, 10.0]), np.array([0.0, 0.0]), None, 2, 2)
    assert outside.sum() == pytest.approx(0.5)
