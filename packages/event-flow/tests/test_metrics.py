from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from opsin.eventflow import EVENT_CD, ConfigError
from opsin.eventflow import metrics as mt
from opsin.eventflow.io.flow_labels import FlowLabels


def const_flow(u: float, v: float, h: int, w: int) -> np.ndarray:
    out = np.empty((2, h, w), dtype=np.float32)
    out[0] = u
    out[1] = v
    return out


def make_events(xs, ys, ts) -> np.ndarray:
    ev = np.zeros(len(xs), dtype=EVENT_CD)
    ev["x"] = xs
    ev["y"] = ys
    ev["t"] = ts
    order = np.argsort(ev["t"], kind="stable")
    return ev[order]


def test_all_is_sorted_and_complete():
    assert mt.__all__ == sorted(mt.__all__)
    for name in mt.__all__:
        assert hasattr(mt, name)


def test_perfect_prediction_at_half_resolution_gives_zero_aee():
    gt = const_flow(3.0, -2.0, 64, 96)
    pred = const_flow(1.5, -1.0, 32, 48)
    m = mt.frame_metrics(pred, gt)
    assert m.n_valid == 64 * 96
    assert m.aee == pytest.approx(0.0, abs=1e-12)
    assert m.outlier_pct == 0.0
    # A zoom (linear field) is interpolated exactly away from the clamped one-pixel border.
    ys, xs = np.mgrid[0:64, 0:96].astype(np.float64)
    gt_zoom = np.stack([0.05 * (xs - 40), 0.05 * (ys - 30)])
    yh, xh = np.mgrid[0:32, 0:48].astype(np.float64)
    # half-resolution pixel i covers full-resolution position 2 i + 0.5; its displacement is half as many px
    pred_zoom = np.stack([0.05 * (2 * xh + 0.5 - 40) / 2, 0.05 * (2 * yh + 0.5 - 30) / 2])
    valid = mt.valid_mask(gt_zoom, crop=(1, 1, 62, 94))
    assert mt.frame_metrics(pred_zoom, gt_zoom, valid).aee == pytest.approx(0.0, abs=1e-9)
    # Without the component rescaling the error would be half the GT magnitude.
    assert mt.frame_metrics(pred_zoom * 2, gt_zoom, valid).aee > 0.1


def test_infinite_gt_rows_are_excluded():
    gt = const_flow(1.0, 1.0, 40, 50)
    gt[:, 30:] = np.inf
    gt[0, 5, 5] = np.nan
    pred = const_flow(1.0, 1.0, 40, 50)
    pred[:, 30:] = 1000.0
    m = mt.frame_metrics(pred, gt)
    assert m.n_valid == 30 * 50 - 1
    assert m.aee == 0.0
    assert math.isfinite(m.zero_flow_aee)
    assert m.zero_flow_aee == pytest.approx(math.sqrt(2))


def test_zero_gt_dropped_unless_kept():
    gt = const_flow(0.0, 0.0, 4, 4)
    gt[:, 0, 0] = (2.0, 0.0)
    assert mt.valid_mask(gt).sum() == 1
    assert mt.valid_mask(gt, keep_zero_gt=True).sum() == 16


def test_constant_error_of_four_px():
    gt = const_flow(1.0, 0.0, 20, 20)
    pred = const_flow(1.0, 4.0, 20, 20)
    m = mt.frame_metrics(pred, gt)
    assert m.aee == pytest.approx(4.0)
    assert m.outlier_pct == 100.0
    assert m.outlier_or_pct == 100.0
    assert (m.npe1, m.npe2, m.npe3) == (100.0, 100.0, 100.0)
    assert m.aee_rel == pytest.approx(4.0)


def test_and_and_or_rules_differ():
    gt = np.zeros((2, 1, 4), dtype=np.float64)
    pred = np.zeros_like(gt)
    gt[0, 0] = [10.0, 100.0, 10.0, 10.0]
    pred[0, 0] = [12.0, 104.0, 14.0, 13.0]
    # e = 2 (OR only: 2/10 >= 0.05), e = 4 with |g| = 100 (OR only: e >= 3), e = 4 (both), e = 3 (OR only: e >= 3)
    m = mt.frame_metrics(pred, gt)
    assert m.outlier_pct == pytest.approx(25.0)
    assert m.outlier_or_pct == pytest.approx(100.0)


def test_rel_ref_pred_uses_the_prediction_magnitude():
    gt = const_flow(76.0, 0.0, 2, 2)
    pred = const_flow(80.0, 0.0, 2, 2)
    assert mt.frame_metrics(pred, gt, rel_ref="gt").outlier_pct == 100.0  # 4 > 0.05 * 76
    assert mt.frame_metrics(pred, gt, rel_ref="pred").outlier_pct == 0.0  # 4 > 0.05 * 80 is false
    with pytest.raises(ConfigError, match="rel_ref"):
        mt.frame_metrics(pred, gt, rel_ref="both")  # type: ignore[arg-type]


def test_angular_error_and_zero_flow():
    gt = const_flow(0.0, 0.0, 2, 2)
    pred = const_flow(1.0, 0.0, 2, 2)
    valid = mt.valid_mask(gt, keep_zero_gt=True)
    m = mt.frame_metrics(pred, gt, valid)
    assert m.angular_error == pytest.approx(45.0)
    assert math.isnan(m.aee_rel)
    assert m.outlier_or_pct == 100.0  # any error on a zero GT is relatively an outlier
    assert mt.frame_metrics(gt, gt, valid).angular_error == pytest.approx(0.0, abs=1e-6)
    g = const_flow(3.0, 4.0, 3, 3)
    assert mt.frame_metrics(np.zeros_like(g), g).aee == pytest.approx(5.0)
    assert mt.frame_metrics(g, g).zero_flow_aee == pytest.approx(5.0)
    assert mt.frame_metrics(g, g).zero_flow_outlier_pct == 100.0


def test_interval_scaling_doubles_and_halves():
    dt = 10_000
    flows = np.stack([const_flow(1.5, -0.5, 8, 8)] * 3)
    starts = np.array([0, dt, 2 * dt])
    for mode in mt.ASSOCIATION_MODES:
        double = mt.associate_predictions(flows, starts, dt, dt, 3 * dt, mode)
        assert double is not None
        np.testing.assert_allclose(double, const_flow(3.0, -1.0, 8, 8), atol=1e-12)
        half = mt.associate_predictions(flows, starts, dt, 0, dt // 2, mode)
        assert half is not None
        np.testing.assert_allclose(half, const_flow(0.75, -0.25, 8, 8), atol=1e-12)
        assert mt.associate_predictions(flows, starts, dt, 2 * dt, 4 * dt, mode) is None  # not covered
    with pytest.raises(ConfigError, match="association"):
        mt.associate_predictions(flows, starts, dt, 0, dt, "nearest")  # type: ignore[arg-type]


def test_integrate_over_two_bins_of_different_flow():
    dt = 1000
    h, w = 10, 20
    xs = np.mgrid[0:h, 0:w][1].astype(np.float64)
    f0 = const_flow(1.0, 0.0, h, w)
    f1 = np.stack([np.zeros((h, w)), 0.1 * xs])  # v grows with x: the lookup must follow the moved position
    flows = np.stack([f0, f1])
    starts = np.array([0, dt])
    full = mt.associate_predictions(flows, starts, dt, 0, 2 * dt, "integrate")
    assert full is not None
    inner = np.s_[:, :, : w - 2]
    np.testing.assert_allclose(full[0][inner[1:]], 1.0)
    np.testing.assert_allclose(full[1][inner[1:]], (0.1 * (xs + 1.0))[inner[1:]], atol=1e-12)
    # Half of each bin: alpha = 0.5 for both.
    part = mt.associate_predictions(flows, starts, dt, dt // 2, dt + dt // 2, "integrate")
    assert part is not None
    np.testing.assert_allclose(part[1][:, : w - 2], (0.05 * (xs + 0.5))[:, : w - 2], atol=1e-12)
    # `scale` keeps the bin of largest overlap (the first one on a tie) only.
    scaled = mt.associate_predictions(flows, starts, dt, 0, 2 * dt, "scale")
    assert scaled is not None
    np.testing.assert_allclose(scaled, 2 * f0)


def test_resolution_scaling_per_axis():
    up = mt.upsample_flow(const_flow(1.0, 2.0, 16, 32), (32, 128))
    assert up.shape == (2, 32, 128)
    np.testing.assert_allclose(up[0], 4.0)
    np.testing.assert_allclose(up[1], 4.0)
    src = const_flow(1.0, 2.0, 16, 32)
    before = src.copy()
    mt.upsample_flow(src, (8, 8))
    np.testing.assert_array_equal(src, before)


def test_event_mask_excludes_pixels_without_events():
    dt = 1000
    gt_h, gt_w = 8, 12
    labels = FlowLabels(
        flow=np.stack([const_flow(2.0, 0.0, gt_h, gt_w)] * 2),
        start_ts=np.array([0, dt]),
        end_ts=np.array([dt, 2 * dt]),
        event_input_height=2 * gt_h,
        event_input_width=2 * gt_w,
    )
    pred = const_flow(0.0, 5.0, gt_h, gt_w)
    pred[:, 2, 3] = (2.0, 0.0)  # right where frame 0 has events
    pred[:, 5, 7] = (2.0, 0.0)  # right where frame 1 has events
    flows = np.stack([pred, pred])
    # Sensor pixel (x=6..7, y=4..5) lands on GT pixel (3, 2); the event at t = 1500 belongs to frame 1 only.
    events = make_events([6, 7, 14], [4, 5, 10], [10, 900, 1500])
    acc = mt.evaluate_flow_sequence(flows, [0, dt], dt, labels, events=events)
    values = acc.compute()
    assert values["n_frames"] == 2
    assert values["n_valid_px"] == 2
    assert values["aee"] == 0.0
    assert values["zero_flow_aee"] == pytest.approx(2.0)
    shuffled = mt.evaluate_flow_sequence(flows, [0, dt], dt, labels, events=events[::-1]).compute()
    assert shuffled == values
    dense = mt.evaluate_flow_sequence(flows, [0, dt], dt, labels, dense=True).compute()
    assert dense["n_valid_px"] == 2 * gt_h * gt_w
    assert dense["aee"] > 5.0
    ranged = mt.evaluate_flow_sequence(flows, [0, dt], dt, labels, dense=True, time_range=(dt, 2 * dt)).compute()
    assert ranged["n_frames"] == 1
    with pytest.raises(ConfigError, match="events"):
        mt.evaluate_flow_sequence(flows, [0, dt], dt, labels)
    mask = mt.event_mask(events, 0, dt, (gt_h, gt_w), (2 * gt_h, 2 * gt_w))
    assert mask.sum() == 1
    assert mask[2, 3]
    with pytest.raises(ConfigError, match="outside"):
        mt.event_mask(events, 0, 2 * dt, (gt_h, gt_w), (gt_h, gt_w))


def test_event_mask_from_features_resizes_to_gt():
    feat = np.zeros((3, 4, 4), dtype=np.float32)
    feat[1, 1, 2] = -0.5  # negative signed values count as events too
    mask = mt.event_mask_from_features(feat, (8, 8))
    assert mask.sum() == 4
    assert mask[2:4, 4:6].all()


def test_accumulator_frame_average_pooled_merge_and_state():
    gt = const_flow(1.0, 0.0, 4, 4)
    acc = mt.FlowMetricAccumulator()
    acc.update(const_flow(2.0, 0.0, 4, 4), gt)  # 16 px, e = 1
    small_valid = np.zeros((4, 4), dtype=bool)
    small_valid[0, :2] = True
    acc.update(const_flow(4.0, 0.0, 4, 4), gt, valid=small_valid)  # 2 px, e = 3
    empty = gt.copy()
    empty[:] = np.inf
    acc.update(gt, empty)  # no valid pixel: seen but not averaged
    values = acc.compute()
    assert values["n_frames"] == 2
    assert values["n_frames_seen"] == 3
    assert values["n_valid_px"] == 18
    assert values["aee"] == pytest.approx(2.0)
    assert values["aee_pooled"] == pytest.approx((16 * 1 + 2 * 3) / 18)
    assert values["zero_flow_aee"] == pytest.approx(1.0)
    assert values["outlier_pct"] == 0.0  # e = 3 is not > 3 px
    assert values["outlier_or_pct"] == pytest.approx(100.0)

    other = mt.FlowMetricAccumulator.from_state_vector(acc.state_vector())
    merged = other.merge(acc).compute()
    assert merged["n_valid_px"] == 36
    assert merged["aee"] == pytest.approx(2.0)
    acc.reset()
    assert math.isnan(acc.compute()["aee"])
    assert acc.compute()["n_frames"] == 0
    with pytest.raises(ConfigError, match="entries"):
        acc.load_state_vector(np.zeros(3))


def _sync_worker(rank: int, store: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        acc = mt.FlowMetricAccumulator()
        gt = const_flow(1.0, 0.0, 4, 4)
        for _ in range(rank + 1):  # rank 0: one frame with e = 1; rank 1: two frames with e = 3
            acc.update(const_flow(2.0 + 2 * rank, 0.0, 4, 4), gt)
        acc.sync()
        np.save(f"{out_dir}/rank{rank}.npy", acc.state_vector())
    finally:
        dist.destroy_process_group()


def test_accumulator_sync_is_a_noop_without_distributed():
    acc = mt.FlowMetricAccumulator()
    acc.update(const_flow(2.0, 0.0, 4, 4), const_flow(1.0, 0.0, 4, 4))
    before = acc.state_vector()
    acc.sync()
    np.testing.assert_array_equal(acc.state_vector(), before)


@pytest.mark.slow
def test_accumulator_sync_sums_over_two_processes(tmp_path):
    mp = pytest.importorskip("torch.multiprocessing")
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_sync_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    states = [np.load(tmp_path / f"rank{r}.npy") for r in range(2)]
    np.testing.assert_array_equal(states[0], states[1])
    values = mt.FlowMetricAccumulator.from_state_vector(states[0]).compute()
    assert values["n_frames"] == 3
    assert values["n_valid_px"] == 48
    assert values["aee"] == pytest.approx((1 + 3 + 3) / 3)


def _translating_event_texture(shift: tuple[float, float], dt: int, n_windows: int, size: int) -> np.ndarray:
    """Events fired by the edges of a smooth random texture moving by ``shift`` px per ``dt``."""
    gen = np.random.default_rng(3)
    tex = cv2.GaussianBlur(gen.random((size, size)).astype(np.float32), (0, 0), 2.0)
    gy, gx = np.gradient(tex)
    mag = np.hypot(gx, gy)
    ys, xs = np.nonzero(mag > np.percentile(mag, 70))
    per_pixel = 3 * n_windows
    t = gen.uniform(0, n_windows * dt, xs.size * per_pixel)
    x = np.rint(np.repeat(xs, per_pixel) + shift[0] * t / dt)
    y = np.rint(np.repeat(ys, per_pixel) + shift[1] * t / dt)
    keep = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    return make_events(x[keep].astype(np.int64), y[keep].astype(np.int64), t[keep].astype(np.int64))


def test_farneback_recovers_a_translation():
    dt = 10_000
    shift = (2.0, -1.0)
    size = 96
    events = _translating_event_texture(shift, dt, 3, size)
    flows, starts = mt.farneback_flows(events, dt, size, size, num_windows=2)
    assert flows.shape == (2, 2, size, size)
    np.testing.assert_array_equal(starts, [0, dt])
    inner = flows[0][:, 16:-16, 16:-16]
    assert abs(float(np.median(inner[0])) - shift[0]) < 0.5
    assert abs(float(np.median(inner[1])) - shift[1]) < 0.5
    # The baseline beats the zero flow on the same frame.
    gt = const_flow(*shift, size, size)
    valid = mt.valid_mask(gt, crop=(16, 16, size - 32, size - 32))
    assert mt.frame_metrics(flows[0], gt, valid).aee < 0.5 * mt.frame_metrics(0 * gt, gt, valid).aee
    every, _ = mt.farneback_flows(events, dt, size, size)
    assert every.shape[0] == 3  # up to the window of the last event
    np.testing.assert_array_equal(every[2], every[1])  # no next window: the previous flow is kept
    empty, _ = mt.farneback_flows(events[:0], dt, size, size, num_windows=1)
    assert not empty.any()
    with pytest.raises(ConfigError):
        mt.farneback_flows(events, 0, size, size)


def _moving_dots(shift: tuple[float, float], dt: int, size: int) -> np.ndarray:
    """Events of 100 random dots moving by ``shift`` px during ``[0, dt)``, 20 events per dot."""
    gen = np.random.default_rng(5)
    dots = gen.integers(0, size, (100, 2))
    per_dot = 20
    t = gen.uniform(0, dt, dots.shape[0] * per_dot)
    x = np.rint(np.repeat(dots[:, 0], per_dot) + shift[0] * t / dt)
    y = np.rint(np.repeat(dots[:, 1], per_dot) + shift[1] * t / dt)
    keep = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    return make_events(x[keep].astype(np.int64), y[keep].astype(np.int64), t[keep].astype(np.int64))


def test_flow_warp_loss_rewards_the_true_motion():
    dt = 10_000
    shift = (6.0, 2.0)
    size = 64
    events = _moving_dots(shift, dt, size)
    true = mt.flow_warp_loss(events, const_flow(*shift, size, size), dt, t_ref=0)
    zero = mt.flow_warp_loss(events, const_flow(0.0, 0.0, size, size), dt, t_ref=0)
    wrong = mt.flow_warp_loss(events, const_flow(-shift[0], -shift[1], size, size), dt, t_ref=0)
    partial = mt.flow_warp_loss(events, const_flow(shift[0] / 2, shift[1] / 2, size, size), dt, t_ref=0)
    assert zero == pytest.approx(1.0)
    assert true > 1.5
    assert wrong < 1.0
    assert partial < true
    # A half-resolution flow is rescaled to the sensor: same value as the full-resolution one.
    half = mt.flow_warp_loss(events, const_flow(shift[0] / 2, shift[1] / 2, 32, 32), dt, 0, (size, size))
    assert half == pytest.approx(true)
    assert math.isnan(mt.flow_warp_loss(events[:0], const_flow(0, 0, 4, 4), dt))
    seq = mt.sequence_flow_warp_loss(events, np.stack([const_flow(*shift, size, size)]), [0], dt)
    assert seq == pytest.approx(true)


def test_farneback_on_a_real_recording(fixtures_root):
    path = fixtures_root / "prophesee-raw-samples" / "evt2_sample.raw"
    if not path.is_file():
        pytest.skip(f"real Prophesee recording not found: {path} (set OPSIN_FIXTURES)")
    from opsin.eventflow import open_events

    with open_events(path) as reader:
        events = reader.read_range(None, None)
        height, width = reader.height, reader.width
    dt = 20_000
    t0 = int(events["t"].min())
    flows, starts = mt.farneback_flows(events, dt, height, width, t_start=t0)
    assert flows.shape == (3, 2, 476, 600)  # the recording spans 50 ms
    np.testing.assert_array_equal(starts, t0 + dt * np.arange(3))
    assert np.isfinite(flows).all()
    assert flows[0].any()
    np.testing.assert_array_equal(flows[2], flows[1])  # the last window has no next one to match
