from __future__ import annotations

import numpy as np
import pytest

from opsin.eventflow import EVENT_CD, PREPROCESSING_DICT, CDProcessor, ConfigError, register_new_preprocessing
from opsin.eventflow.preprocessing import (
    diff,
    event_cube,
    event_cube_paper,
    get_cin,
    histo,
    multi_channel_timesurface,
    resize_features,
    timesurface,
)


def make_events(rows):
    """Events from (x, y, p, t) tuples."""
    return np.array(rows, dtype=EVENT_CD).reshape(-1)


def out(t, c, h=4, w=5):
    return np.zeros((t, c, h, w), np.float32)


def test_histo_by_hand():
    ev = make_events([(1, 2, 1, 0), (1, 2, 1, 10), (1, 2, 0, 60), (3, 0, 1, 99), (3, 0, 1, 150), (0, 0, 1, -1)])
    arr = out(2, 2)
    histo(ev, arr, 100, max_incr_per_pixel=5)  # dt = 50; t=150 lands in the last bin; t<0 dropped
    expected = out(2, 2)
    expected[0, 1, 2, 1] = 2 / 5
    expected[1, 0, 2, 1] = 1 / 5
    expected[1, 1, 0, 3] = 2 / 5
    np.testing.assert_allclose(arr, expected, rtol=1e-6)
    many = make_events([(0, 0, 1, 1)] * 9)
    histo(many, arr, 100)
    assert arr[0, 1, 0, 0] == 1.0  # saturates at 1


def test_histo_downsampling_increment():
    ev = make_events([(2, 2, 1, 0), (3, 3, 1, 0), (3, 2, 1, 0)])
    arr = out(1, 2, 2, 2)
    histo(ev, arr, 10, downsampling_factor=1, max_incr_per_pixel=5)
    assert arr[0, 1, 1, 1] == pytest.approx(3 / (5 * 4))
    assert arr.sum() == pytest.approx(3 / 20)


def test_diff_is_order_independent():
    rows = [(1, 1, 1, 5)] * 7 + [(1, 1, 0, 6)] * 2
    arr = out(1, 1)
    diff(make_events(rows), arr, 10, max_incr_per_pixel=5)
    assert arr[0, 0, 1, 1] == pytest.approx(1.0)  # clip(5/5) = 1
    arr2 = out(1, 1)
    diff(make_events(rows[::-1]), arr2, 10, max_incr_per_pixel=5)
    np.testing.assert_array_equal(arr, arr2)
    arr3 = out(1, 1)
    diff(make_events([(0, 0, 0, 1)] * 2 + [(0, 0, 1, 2)]), arr3, 10)
    assert arr3[0, 0, 0, 0] == pytest.approx(-0.2)


def test_timesurface_latest_event_normed_and_raw():
    ev = make_events([(1, 1, 1, 10), (1, 1, 1, 40), (1, 1, 0, 20), (2, 2, 1, 75), (3, 3, 1, 130)])
    arr = out(2, 2)
    timesurface(ev, arr, 100)
    assert arr[0, 1, 1, 1] == pytest.approx(40 / 50)
    assert arr[0, 0, 1, 1] == pytest.approx(20 / 50)
    assert arr[1, 1, 2, 2] == pytest.approx(25 / 50)
    assert arr[1, 1, 3, 3] == 0  # offset 80 >= dt: dropped
    raw = out(2, 2)
    timesurface(ev, raw, 100, normed=False)
    assert raw[0, 1, 1, 1] == 40


def test_multi_channel_timesurface_micro_bins():
    ev = make_events([(0, 0, 1, 5), (0, 0, 0, 40), (1, 1, 1, 95)])
    arr = out(1, 6)
    multi_channel_timesurface(ev, arr, 90)  # 3 micro-bins of 30 us
    assert arr[0, 1, 0, 0] == pytest.approx(5 / 30)  # micro-bin 0, ON
    assert arr[0, 2, 0, 0] == pytest.approx(10 / 30)  # micro-bin 1, OFF -> channel 2
    assert arr[0, 5, 1, 1] == 0  # t=95 lands in the last micro-bin with offset 35 >= 30: dropped


def test_event_cube_hand_weights():
    # T = 1, M = 3, total = 300: tau = t * 3 / 300 - 0.5
    ev = make_events([(0, 0, 1, 100), (1, 0, 0, 125), (2, 0, 1, 10)])
    arr = out(1, 6)
    event_cube(ev, arr, 300, max_incr_per_pixel=1)
    # t=100: tau = 0.5 -> 0.5 to micro-bin 0, 0.5 to 1 (ON channels 1 and 3)
    assert arr[0, 1, 0, 0] == pytest.approx(0.5)
    assert arr[0, 3, 0, 0] == pytest.approx(0.5)
    # t=125: tau = 0.75 -> 0.25 to bin 0, 0.75 to bin 1 (OFF channels 0 and 2)
    assert arr[0, 0, 0, 1] == pytest.approx(0.25)
    assert arr[0, 2, 0, 1] == pytest.approx(0.75)
    # t=10: tau = -0.4 -> l = -1 dropped, 0.6 to bin 0
    assert arr[0, 1, 0, 2] == pytest.approx(0.6)
    assert arr[:, :, 0, 2].sum() == pytest.approx(0.6)
    signed = out(1, 3)
    event_cube(ev, signed, 300, split_polarity=False, max_incr_per_pixel=1)
    assert signed[0, 0, 0, 1] == pytest.approx(-0.25)
    assert signed[0, 1, 0, 0] == pytest.approx(0.5)


def test_event_cube_mass_conservation_and_order_independence():
    gen = np.random.default_rng(3)
    n = 4000
    total = 100_000
    rows = np.zeros(n, dtype=make_events([]).dtype)
    rows["x"] = gen.integers(0, 64, n)
    rows["y"] = gen.integers(0, 48, n)
    rows["p"] = gen.integers(0, 2, n)
    # Away from the first and last half micro-bin (N = 4 * 3 = 12 micro-bins of 8333 us).
    rows["t"] = gen.integers(total // 24 + 1, total - total // 24 - 1, n)
    arr = np.zeros((4, 6, 48, 64), np.float32)
    event_cube(rows, arr, total, max_incr_per_pixel=1000)  # far below saturation
    assert arr.sum() == pytest.approx(n / 1000, rel=1e-5)
    shuffled = rows[gen.permutation(n)]
    arr2 = np.zeros_like(arr)
    event_cube(shuffled, arr2, total, max_incr_per_pixel=1000)
    np.testing.assert_allclose(arr, arr2, atol=1e-7)
    paper = np.zeros((1, 10, 48, 64), np.float32)
    inner = rows[(rows["t"] > total // 10) & (rows["t"] < total - total // 10)]  # 5 micro-bins of 20 ms
    event_cube_paper(inner, paper, total, max_incr_per_pixel=1000)
    assert paper.sum() == pytest.approx(inner.size / 1000, rel=1e-5)


@pytest.mark.parametrize(
    "name", sorted(["histo", "diff", "timesurface", "multi_channel_timesurface", "event_cube", "event_cube_paper"])
)
def test_every_builder_is_order_independent(name, random_events):
    info = PREPROCESSING_DICT[name]
    ev = random_events[random_events["x"] < 64]
    ev = ev[ev["y"] < 48]
    a = np.zeros((3, info["cin"], 48, 64), np.float32)
    b = np.zeros_like(a)
    info["fn"](ev, a, 200_000, **info["kwargs"])
    info["fn"](ev[::-1].copy(), b, 200_000, **info["kwargs"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.any()


def test_registry_and_cdprocessor():
    assert set(PREPROCESSING_DICT) >= {
        "histo",
        "diff",
        "timesurface",
        "multi_channel_timesurface",
        "event_cube",
        "event_cube_paper",
    }
    assert PREPROCESSING_DICT["event_cube"]["micro_bins"] == 3
    assert PREPROCESSING_DICT["event_cube_paper"]["cin"] == 10
    assert PREPROCESSING_DICT["diff"]["signed"] is True
    assert get_cin("event_cube", {"split_polarity": False}) == 3
    with pytest.raises(ConfigError, match="unknown preprocessing"):
        CDProcessor(4, 5, preprocessing="nope")
    with pytest.raises(ConfigError, match="takes"):
        CDProcessor(4, 5, preprocessing="histo", preprocess_kwargs={"bogus": 1})

    def ones(events, output_array, total_tbins_delta_t, downsampling_factor=0, reset=True):
        output_array[...] = 1

    register_new_preprocessing("ones_test", 2, ones, lambda f: np.zeros((*f.shape[1:], 3), np.uint8))
    try:
        proc = CDProcessor(4, 5, num_tbins=2, preprocessing="ones_test")
        assert proc.get_array_dim() == (2, 2, 4, 5)
        assert proc(make_events([(0, 0, 1, 1)]), delta_t=10).sum() == 80
    finally:
        del PREPROCESSING_DICT["ones_test"]
    proc = CDProcessor(2, 3, num_tbins=2, preprocessing="histo", downsampling_factor=1)
    res = proc(make_events([(5, 3, 1, 0), (4, 2, 1, 60)]), delta_t=100)
    assert proc.get_preprocess_dtype() == np.float32
    assert res[0, 1, 1, 2] == pytest.approx(1 / 20)
    assert res[1, 1, 1, 2] == pytest.approx(1 / 20)


def test_viz_is_uint8_rgb():
    feat = np.zeros((6, 3, 4), np.float32)
    feat[1, 0, 0] = 1.0  # ON
    feat[0, 1, 1] = 1.0  # OFF
    img = PREPROCESSING_DICT["event_cube"]["viz"](feat)
    assert img.shape == (3, 4, 3)
    assert img.dtype == np.uint8
    assert img[0, 0, 0] == 255
    assert img[1, 1, 0] == 0
    assert img[2, 2, 0] == 127
    ts = PREPROCESSING_DICT["timesurface"]["viz"](np.full((2, 3, 4), 0.5, np.float32))
    assert ts[0, 0, 0] == 127


def test_resize_features_power_of_two_only():
    arr = np.arange(2 * 4 * 8, dtype=np.float32).reshape(1, 2, 4, 8)
    small = resize_features(arr, 2, 4)
    assert small.shape == (1, 2, 2, 4)
    assert small[0, 0, 0, 0] == pytest.approx(arr[0, 0, :2, :2].mean())
    with pytest.raises(ConfigError, match="power-of-2"):
        resize_features(arr, 2, 3)
