from __future__ import annotations

import itertools
import json
import math

import cv2
import numpy as np
import pytest

from opsin.eventflow import ConfigError
from opsin.eventflow._motion import centring
from opsin.eventflow.io import open_events, read_flow_labels
from opsin.eventflow.synthetic import (
    AffineMotion,
    HomographyMotion,
    SequenceSpec,
    frame_times,
    generate_sequence,
    gt_flow,
    make_texture,
    max_displacement,
    render,
    split_counts,
)


def test_pure_translation_gt_is_v_dt_everywhere():
    motion = AffineMotion((24, 32), centring((48, 64), (24, 32)), 1.0, (120.0, -45.0))
    g = gt_flow(motion, 30_000, 40_000, 24, 32)
    np.testing.assert_allclose(g[0], 1.2, atol=1e-5)
    np.testing.assert_allclose(g[1], -0.45, atol=1e-5)


def test_affine_gt_matches_closed_form_and_rendered_frames():
    h, w = 40, 48
    v, omega, sr = np.array([30.0, 12.0]), 0.8, 0.4
    motion = AffineMotion((h, w), centring((2 * h, 2 * w), (h, w)), 1.0, tuple(v), omega, sr)
    t0, t1 = 0.2, 0.23  # seconds
    g = gt_flow(motion, t0 * 1e6, t1 * 1e6, h, w)
    c = np.array([(w - 1) / 2, (h - 1) / 2])

    def rot(a):
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([xs.ravel(), ys.ravel()]).astype(np.float64)
    # texture point (placed, shifted) seen at x at t0, then where it is at t1
    q = c[:, None] + rot(-omega * t0) @ (pts - c[:, None]) / math.exp(sr * t0)
    x1 = c[:, None] + math.exp(sr * t1) * rot(omega * t1) @ (q + v[:, None] * (t1 - t0) - c[:, None])
    expected = (x1 - pts).reshape(2, h, w)
    np.testing.assert_allclose(g, expected, atol=1e-4)
    # The rendered frames agree with the GT: I_{t1}(x + g(x)) ~ I_{t0}(x) in the interior.
    tex = make_texture("noise", h, w, np.random.default_rng(0))
    f0 = render(tex, motion.matrix(t0 * 1e6), h, w)
    f1 = render(tex, motion.matrix(t1 * 1e6), h, w)
    mx = (xs + g[0]).astype(np.float32)
    my = (ys + g[1]).astype(np.float32)
    warped = cv2.remap(f1, mx, my, cv2.INTER_LINEAR)
    inner = (slice(6, h - 6), slice(6, w - 6))
    err = np.abs(warped - f0)[inner].mean()
    baseline = np.abs(f1 - f0)[inner].mean()
    assert err < 0.15 * baseline


def test_frame_times_bound_motion_and_hit_every_bin_edge():
    h, w = 32, 32
    motion = HomographyMotion((h, w), centring((64, 64), (h, w)), 1.0, (1.0, -1.5, 3.0), (0.5, 0.0, 0.3))
    times = frame_times(motion, 100_000, 10_000, h, w)
    assert times[0] == 0
    assert times[-1] == 100_000
    assert set(range(0, 100_001, 10_000)) <= set(times)
    steps = [max_displacement(motion, a, b, h, w) for a, b in itertools.pairwise(times)]
    assert max(steps) <= 0.5
    assert len(times) > 12


def test_generate_sequence_outputs_and_determinism(tmp_path):
    spec = SequenceSpec(3, 1234, 32, 32, 100_000, 10_000, "blobs", "affine", max_speed=150)
    meta = generate_sequence(tmp_path / "a", spec)
    generate_sequence(tmp_path / "b", spec)
    dat_a = (tmp_path / "a" / "seq_0003_td.dat").read_bytes()
    assert dat_a == (tmp_path / "b" / "seq_0003_td.dat").read_bytes()
    reader = open_events(tmp_path / "a" / "seq_0003_td.dat")
    assert (reader.height, reader.width) == (32, 32)
    assert reader.event_count == meta["num_events"] > 100
    assert reader.duration_us <= 100_000
    labels = read_flow_labels(tmp_path / "a" / "seq_0003_flow.h5")
    assert labels.flow.shape == (10, 2, 32, 32)
    assert labels.delta_t == 10_000
    assert labels.start_ts.tolist() == list(range(0, 100_000, 10_000))
    assert np.isfinite(labels.flow).all()
    speed = np.hypot(labels.flow[:, 0], labels.flow[:, 1]).max() / 0.01
    assert speed <= 150 * 1.05
    saved = json.loads((tmp_path / "a" / "seq_0003_meta.json").read_text())
    assert saved["seed"] == 1234
    assert saved["trajectory"]["kind"] == "affine"
    assert saved["simulator"]["preset"] == "clean"


@pytest.mark.parametrize("fmt", ["h5", "evt2"])
def test_other_formats_are_readable(tmp_path, fmt):
    spec = SequenceSpec(0, 7, 16, 16, 40_000, 10_000, "checker", "piecewise", fmt=fmt)
    meta = generate_sequence(tmp_path / "a", spec)
    reader = open_events(tmp_path / "a" / meta["events"])
    assert reader.event_count == meta["num_events"] > 0
    generate_sequence(tmp_path / "b", spec)  # same seed: byte-identical files
    for name in (meta["events"], meta["flow"]):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_invalid_specs_and_splits():
    with pytest.raises(ConfigError, match="format"):
        generate_sequence("/nonexistent", SequenceSpec(0, 1, 8, 8, 10_000, 10_000, "noise", "affine", fmt="avi"))
    with pytest.raises(ConfigError, match="texture"):
        make_texture("plaid", 8, 8, np.random.default_rng(0))
    assert split_counts(1) == (1, 0, 0)
    assert split_counts(3) == (1, 1, 1)
    assert split_counts(10) == (6, 2, 2)


@pytest.mark.parametrize("supersample", [False, True])
def test_render_stays_in_the_texture_range_across_a_horizon(supersample):
    # A homography whose horizon (denominator 0) crosses the frame: OpenCV alone returns values far below the texture.
    tex = np.random.default_rng(2).uniform(20.0, 240.0, (240, 320)).astype(np.float32)
    horizon = np.array(
        [
            [2.5448928948727684e-01, 8.8900946986848661e-01, -1.7519840030577251e02],
            [-9.4433776346944909e-01, 4.9854619409399581e-01, 8.7642141673943115e01],
            [4.1192058296738896e-04, 6.0435459465640433e-03, -8.3469862791688276e-02],
        ]
    )  # a random homography of the synthetic generator, 1.74 s into a noisy-preset sequence
    frame = render(tex, horizon, 120, 160, supersample)
    assert frame.shape == (120, 160)
    assert frame.min() >= tex.min()
    assert frame.max() <= tex.max()
