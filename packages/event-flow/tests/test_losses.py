from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from opsin.eventflow.errors import ConfigError
from opsin.eventflow.losses import (
    LOSS_NAMES,
    LOSS_WEIGHTS,
    FlowLoss,
    SecondOrderLoss,
    SmoothnessLoss,
    charbonnier,
    charbonnier_loss,
    event_mask,
    extreme_displacement_loss,
    register_loss,
    registered_losses,
    second_order_validity,
    unregister_loss,
)
from opsin.eventflow.warping import Pyramid, Warping, normalize_flow

SIZE = 64
TBINS = 6
BATCH = 2
MICRO = 3
TRUE_U = 2.0
SWEEP = (-2.0, 0.0, 1.0, 2.0, 3.0)


def _bumps(xx: np.ndarray, yy: np.ndarray, centres: np.ndarray, amps: np.ndarray, radius: float) -> np.ndarray:
    """Sum of compactly supported bumps (1 - r^2/R^2)^2: smooth, and exactly zero away from the bumps."""
    out = np.zeros_like(xx)
    for (cx, cy), amp in zip(centres, amps, strict=True):
        r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / radius**2
        out += amp * np.where(r2 < 1, (1 - r2) ** 2, 0.0)
    return out


def translating_texture(per_micro_bin: int = 2, signed: bool = False, u: float = TRUE_U, seed: int = 0) -> torch.Tensor:
    """(T, B, M * P, H, W) micro-binned features of a texture moving by (u, 0) px per bin.

    Micro-bin m of bin t shows the texture at time t + m / M, so bin t + 1 is exactly bin t shifted by u and the
    micro-bins of one bin are shifted by u / M from each other (sub-pixel, evaluated analytically).
    """
    gen = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(SIZE, dtype=np.float64), np.arange(SIZE, dtype=np.float64), indexing="ij")
    radius, count = 3.5, 70
    margin = abs(u) * TBINS + 2 * radius
    out = np.zeros((TBINS, BATCH, MICRO * per_micro_bin, SIZE, SIZE))
    for b in range(BATCH):
        for p in range(per_micro_bin):
            centres = gen.uniform(-margin, SIZE + margin, (count, 2))
            amps = gen.uniform(0.3, 1.0, count) * (-1.0 if signed and p == 0 else 1.0)
            if signed:
                amps *= gen.choice([-1.0, 1.0], count)
            for t in range(TBINS):
                for m in range(MICRO):
                    shift = u * (t + m / MICRO)
                    out[t, b, per_micro_bin * m + p] = _bumps(xx - shift, yy, centres, amps, radius)
    return torch.from_numpy(out).float()


def constant_flows(levels: list[torch.Tensor], u: float, v: float = 0.0) -> list[torch.Tensor]:
    """Flows of (u, v) full-resolution pixels per bin at every level (align_corners scaling: (w_i - 1) / (W - 1))."""
    flows = []
    for level in levels:
        t, b, _, h, w = level.shape
        flow = torch.zeros(t * b, 2, h, w)
        flow[:, 0] = u * (w - 1) / (SIZE - 1)
        flow[:, 1] = v * (h - 1) / (SIZE - 1)
        flows.append(flow)
    return flows


@pytest.fixture(scope="module")
def texture_levels() -> list[torch.Tensor]:
    return Pyramid(3).compute_all_levels(translating_texture())


@pytest.fixture(scope="module")
def signed_levels() -> list[torch.Tensor]:
    return Pyramid(3).compute_all_levels(translating_texture(per_micro_bin=1, signed=True))


def _sweep(name: str, levels: list[torch.Tensor], **kwargs: object) -> dict[float, float]:
    loss = FlowLoss({name: 1.0}, **kwargs)  # type: ignore[arg-type]
    return {u: float(loss(constant_flows(levels, u), levels, BATCH)[name]) for u in SWEEP}


def test_names_and_default_weights():
    assert LOSS_NAMES == ("data", "smoothness", "smoothness2", "l1", "time_consistency", "bw_deblur")
    assert LOSS_WEIGHTS == {
        "data": 1,
        "smoothness": 0.4,
        "smoothness2": 0.6,
        "l1": 0.3,
        "time_consistency": 1,
        "bw_deblur": 1,
    }
    assert registered_losses()[:6] == LOSS_NAMES
    assert set(FlowLoss().active) == set(LOSS_NAMES)


@pytest.mark.parametrize("name", ["data", "time_consistency", "bw_deblur"])
def test_photometric_losses_are_lowest_at_the_true_motion(texture_levels, name):
    # time_consistency warps by an already normalised flow; normalising it a second time (the original's defect)
    # shrinks the later steps to almost nothing and moves its minimum to u = 3.
    values = _sweep(name, texture_levels)
    best = min(values, key=values.__getitem__)
    assert best == TRUE_U, values
    others = [value for u, value in values.items() if u != TRUE_U]
    assert values[TRUE_U] < 0.75 * min(others), values


def test_bw_deblur_on_signed_single_channel_micro_bins(signed_levels):
    values = _sweep("bw_deblur", signed_levels, preprocess="event_cube", preprocess_kwargs={"split_polarity": False})
    assert min(values, key=values.__getitem__) == TRUE_U, values


def test_time_consistency_is_event_masked_by_default():
    loss = FlowLoss({"data": 1.0, "time_consistency": 1.0})
    assert loss.masked == {"time_consistency"}
    inputs = torch.rand(4, 1, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    inputs[2:] = 0  # the bins that time_consistency predicts hold no event
    out = loss([torch.full((4, 2, 8, 8), 0.5)], [inputs], 1)
    assert out["time_consistency"].item() == 0.0
    assert out["data"].item() > 0.0


def test_l1_is_the_mean_squared_normalised_magnitude():
    gen = torch.Generator().manual_seed(5)
    levels = [torch.zeros(3, 2, 1, 8 * 2**i, 12 * 2**i) for i in range(3)]
    flows = [torch.randn(6, 2, 8 * 2**i, 12 * 2**i, generator=gen) for i in range(3)]
    got = FlowLoss({"l1": 0.3})(flows, levels, 2)["l1"]
    expected = 0.0
    for i, flow in enumerate(flows):
        hat = normalize_flow(flow)
        expected += 2.0 ** -(2 - i) * float((hat[:, 0] ** 2 + hat[:, 1] ** 2).mean())
    assert float(got) == pytest.approx(0.3 * expected, rel=1e-5)


def test_level_weights_halve_towards_the_coarsest_level():
    levels = [torch.zeros(2, 1, 1, 5 * 2**i, 5 * 2**i) for i in range(3)]
    flows = []
    for i, level in enumerate(levels):
        w = level.shape[-1]
        flow = torch.zeros(2, 2, w, w)
        flow[:, 0] = 0.5 * (i + 1) * (w - 1) / 2  # normalised u = 0.5 * (i + 1)
        flows.append(flow)
    got = float(FlowLoss({"l1": 1.0})(flows, levels, 1)["l1"])
    assert got == pytest.approx(0.25 * 0.25 + 0.5 * 1.0 + 1.0 * 2.25, rel=1e-6)


def _smoothness_values(flow: torch.Tensor) -> tuple[float, float]:
    levels = [torch.ones(1, flow.shape[0], 1, *flow.shape[-2:])]
    out = FlowLoss({"smoothness": 1.0, "smoothness2": 1.0})([flow], levels, flow.shape[0])
    return float(out["smoothness"]), float(out["smoothness2"])


def test_constant_flows_of_any_magnitude_cost_the_same_smoothness():
    reference = _smoothness_values(torch.zeros(2, 2, 24, 40))
    for u, v in ((0.5, 0.0), (3.0, -2.0), (-7.0, 11.0), (40.0, 400.0)):
        flow = torch.zeros(2, 2, 24, 40)
        flow[:, 0], flow[:, 1] = u, v
        got = _smoothness_values(flow)
        assert got[0] == pytest.approx(reference[0], rel=1e-6), (u, v)
        assert got[1] == pytest.approx(reference[1], rel=1e-6), (u, v)


@pytest.mark.parametrize("direction", ["x", "y", "x+y", "x-y"])
def test_affine_flows_cost_the_zero_flow_second_order_smoothness(direction):
    h, w = 24, 40
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    ramp = {"x": xx, "y": yy, "x+y": xx + yy, "x-y": xx - yy}[direction]
    flow = torch.stack((0.3 * ramp + 1.0, -0.2 * ramp + 0.5)).unsqueeze(0).repeat(2, 1, 1, 1)
    reference = _smoothness_values(torch.zeros(2, 2, h, w))
    first, second = _smoothness_values(flow)
    assert second == pytest.approx(reference[1], rel=1e-6)
    assert first > 1.5 * reference[0]  # a ramp is not free for the first-order term


def test_second_order_kernels_are_the_four_second_differences():
    kernels = SecondOrderLoss().kernels
    assert torch.equal(kernels[0, 0], torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(kernels[1, 0], kernels[0, 0].T)
    assert torch.equal(kernels[2, 0], torch.tensor([[1.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.equal(kernels[3, 0], torch.tensor([[0.0, 0.0, 1.0], [0.0, -2.0, 0.0], [1.0, 0.0, 0.0]]))
    # The penalty map is rho(kernel response) where the kernel is defined, and zero elsewhere.
    flow = torch.randn(3, 2, 7, 9, generator=torch.Generator().manual_seed(9))
    response = torch.nn.functional.conv2d(flow.reshape(6, 1, 7, 9), kernels, padding=1).view(3, 2, 4, 7, 9)
    expected = (charbonnier(response) * second_order_validity(7, 9)).reshape(3, 8, 7, 9)
    assert torch.allclose(SecondOrderLoss().penalties(flow), expected, rtol=1e-5, atol=1e-7)
    assert torch.count_nonzero(second_order_validity(7, 9), dim=(1, 2)).tolist() == [49, 45, 35, 35]


def test_smoothness_modules_on_a_step():
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0, :, 2:] = 1.0
    rho0, rho1 = float(charbonnier(torch.tensor(0.0))), float(charbonnier(torch.tensor(1.0)))
    # D_x u is defined on 4x3 positions, one column of which crosses the step; D_y on 3x4 positions, all flat.
    expected_u = (4 * rho1 + 8 * rho0 + 12 * rho0) / 32
    expected_v = (12 * rho0 + 12 * rho0) / 32
    assert float(SmoothnessLoss()(flow)) == pytest.approx(expected_u + expected_v, rel=1e-6)
    assert float(SecondOrderLoss()(torch.zeros(1, 2, 4, 4))) > 0


def test_charbonnier_loss_keeps_masked_elements_in_the_mean():
    x = torch.tensor([0.0, 1.0, -2.0, 3.0])
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0])
    rho = ((x**2) + 1e-6) ** 0.45
    assert float(charbonnier_loss(x)) == pytest.approx(float(rho.mean()), rel=1e-6)
    assert float(charbonnier_loss(x, mask)) == pytest.approx(float(rho[:2].sum() / 4), rel=1e-6)


def test_extreme_displacement_loss_counts_only_large_motions():
    flow = torch.zeros(1, 2, 2, 2)
    flow[0, 0, 0, 0] = 3.0
    flow[0, 1, 1, 1] = 0.5
    assert float(extreme_displacement_loss(flow)) == pytest.approx((9.0 + 0.25) / 4)
    assert float(extreme_displacement_loss(flow, threshold=1.0)) == pytest.approx(9.0 / 4)


def test_event_mask_counts_negative_values():
    x = torch.zeros(1, 1, 3, 2, 2)
    x[..., 0, 0, 0] = -0.5
    x[..., 2, 1, 1] = 0.25
    mask = event_mask(x)
    assert mask.shape == (1, 1, 1, 2, 2)
    assert mask[0, 0, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_masked_losses_see_pixels_with_only_negative_events():
    gen = torch.Generator().manual_seed(2)
    inputs = -(torch.rand(3, 1, 2, 8, 8, generator=gen) + 0.1)  # every pixel holds negative values only
    flows = [torch.full((3, 2, 8, 8), 0.7)]
    masked = FlowLoss({"data": 1, "l1": 1}, smoothness_mask=True)([flows[0]], [inputs], 1)
    plain = FlowLoss({"data": 1, "l1": 1}, smoothness_mask=None)([flows[0]], [inputs], 1)
    for name in ("data", "l1"):
        assert float(masked[name]) == pytest.approx(float(plain[name]), rel=1e-6)
    inputs[:, :, :, :4] = 0  # half of the image without events now weighs zero
    half = FlowLoss({"l1": 1}, smoothness_mask=True)([flows[0]], [inputs], 1)
    assert float(half["l1"]) == pytest.approx(0.5 * float(plain["l1"]), rel=1e-6)


def test_valid_restricts_every_mean_to_the_valid_samples():
    gen = torch.Generator().manual_seed(1)
    t, b = 4, 2
    levels = [torch.rand(t, b, 6, 8 * 2**i, 8 * 2**i, generator=gen) for i in range(3)]
    flows = [torch.randn(t * b, 2, 8 * 2**i, 8 * 2**i, generator=gen) for i in range(3)]
    for level, flow in zip(levels, flows, strict=True):
        level[:, 1] = level[:, 1] * 5 - 2  # padding samples: other statistics, other flows
        flow.view(t, b, *flow.shape[1:])[:, 1] *= 7
    kept = [level[:, :1] for level in levels]
    single = [flow.view(t, b, *flow.shape[1:])[:, :1].reshape(t, *flow.shape[1:]) for flow in flows]
    loss = FlowLoss(dict.fromkeys(LOSS_NAMES, 1.0))
    expected = loss(single, kept, 1)
    got = loss(flows, levels, b, valid=torch.tensor([True, False]))
    unrestricted = loss(flows, levels, b)
    for name in LOSS_NAMES:
        assert float(got[name]) == pytest.approx(float(expected[name]), rel=1e-5), name
        assert float(unrestricted[name]) != pytest.approx(float(expected[name]), rel=1e-3), name
    none_valid = loss(flows, levels, b, valid=torch.tensor([False, False]))
    assert all(float(value) == 0.0 for value in none_valid.values())


def test_a_single_bin_makes_data_contribute_zero_with_one_warning(caplog):
    loss = FlowLoss({"data": 1.0, "l1": 1.0})
    flows = [torch.ones(2, 2, 6, 6, requires_grad=True)]
    inputs = [torch.rand(1, 2, 3, 6, 6)]
    with caplog.at_level(logging.WARNING, logger="opsin.eventflow.losses"):
        first = loss(flows, inputs, 2)
        second = loss(flows, inputs, 2)
    assert first["data"].item() == 0.0
    assert second["data"].item() == 0.0
    assert first["l1"].item() > 0
    warnings = [record for record in caplog.records if "data" in record.getMessage()]
    assert len(warnings) == 1
    sum(first.values()).backward()  # still part of the graph


def test_float32_with_autocast_off():
    gen = torch.Generator().manual_seed(4)
    inputs = [torch.rand(3, 2, 6, 8, 8, generator=gen).bfloat16()]
    flows = [torch.randn(6, 2, 8, 8, generator=gen).bfloat16()]
    loss = FlowLoss(dict.fromkeys(LOSS_NAMES, 1.0))
    reference = loss([flows[0].float()], [inputs[0].float()], 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(flows, inputs, 2)
    for name in LOSS_NAMES:
        assert got[name].dtype == torch.float32
        assert float(got[name]) == pytest.approx(float(reference[name]), rel=1e-6)


def test_gradients_reach_every_level():
    gen = torch.Generator().manual_seed(6)
    levels = [torch.rand(4, 2, 6, 8 * 2**i, 8 * 2**i, generator=gen) for i in range(3)]
    flows = [torch.randn(8, 2, 8 * 2**i, 8 * 2**i, generator=gen).requires_grad_(True) for i in range(3)]
    total = sum(FlowLoss()(flows, levels, 2).values())
    assert isinstance(total, torch.Tensor)
    total.backward()
    for flow in flows:
        assert flow.grad is not None
        assert torch.isfinite(flow.grad).all()
        assert flow.grad.abs().sum() > 0


def test_a_shared_warping_head_follows_resolution_changes():
    head = [Warping()]
    shared = FlowLoss({"data": 1.0, "time_consistency": 1.0}, head)
    gen = torch.Generator().manual_seed(8)
    for h, w in ((16, 16), (12, 20), (16, 16)):
        inputs = [torch.rand(4, 1, 2, h, w, generator=gen)]
        flows = [torch.randn(4, 2, h, w, generator=gen)]
        fresh = FlowLoss({"data": 1.0, "time_consistency": 1.0})(flows, inputs, 1)
        got = shared(flows, inputs, 1)
        for name, value in fresh.items():
            assert float(got[name]) == pytest.approx(float(value), rel=1e-6)
    with pytest.raises(ConfigError, match="levels"):
        shared([torch.zeros(4, 2, 8, 8)] * 2, [torch.zeros(4, 1, 2, 8, 8)] * 2, 1)


def test_micro_bin_layout_sources():
    assert FlowLoss().micro_bins == 3
    assert FlowLoss(preprocess="event_cube_paper").micro_bins == 5
    signed = FlowLoss(preprocess="event_cube", preprocess_kwargs={"split_polarity": False})
    assert (signed.micro_bins, signed.channels_per_micro_bin) == (3, 1)
    explicit = FlowLoss(micro_bins=2, channels_per_micro_bin=4)
    assert (explicit.micro_bins, explicit.channels_per_micro_bin) == (2, 4)
    no_micro = FlowLoss({"data": 1.0, "bw_deblur": 0.0}, preprocess="histo")
    assert "bw_deblur" not in no_micro.active
    with pytest.raises(ConfigError, match="histo"):
        FlowLoss({"bw_deblur": 1.0}, preprocess="histo")
    with pytest.raises(ConfigError, match="micro-bins"):
        FlowLoss({"bw_deblur": 1.0}, micro_bins=1)
    with pytest.raises(ConfigError, match="micro-bins"):
        FlowLoss({"bw_deblur": 1.0})([torch.zeros(2, 2, 4, 4)], [torch.zeros(2, 1, 5, 4, 4)], 1)


def test_invalid_configuration_is_rejected():
    with pytest.raises(ConfigError, match="unknown loss weights"):
        FlowLoss({"photometric": 1.0})
    with pytest.raises(ConfigError, match=">= 0"):
        FlowLoss({"data": -1.0})
    with pytest.raises(ConfigError, match="smoothness_mask"):
        FlowLoss({"data": 1.0}, smoothness_mask=("sharpness",))
    loss = FlowLoss({"data": 1.0})
    with pytest.raises(ConfigError, match="flows"):
        loss([torch.zeros(2, 2, 4, 4)], [], 1)
    with pytest.raises(ConfigError, match="does not match"):
        loss([torch.zeros(3, 2, 4, 4)], [torch.zeros(2, 1, 1, 4, 4)], 1)
    with pytest.raises(ConfigError, match="valid"):
        loss([torch.zeros(2, 2, 4, 4)], [torch.zeros(2, 1, 1, 4, 4)], 1, valid=torch.tensor([True, True]))


def test_registered_losses_join_the_weights():
    def mean_speed(level, masked):
        speed = level.flow_hat.pow(2).sum(1, keepdim=True).sqrt()
        return level.mean(level.per_sample(speed))

    register_loss("mean_speed", mean_speed)
    try:
        with pytest.raises(ConfigError, match="already registered"):
            register_loss("mean_speed", mean_speed)
        flows = [torch.full((2, 2, 5, 5), 2.0)]  # normalised: (1, 1) -> speed sqrt(2)
        got = FlowLoss({"mean_speed": 3.0})(flows, [torch.zeros(2, 1, 1, 5, 5)], 1)
        assert float(got["mean_speed"]) == pytest.approx(3.0 * 2**0.5, rel=1e-6)
    finally:
        unregister_loss("mean_speed")
    assert "mean_speed" not in registered_losses()
    with pytest.raises(ConfigError, match="built-in"):
        register_loss("data", mean_speed)
