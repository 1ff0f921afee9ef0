from __future__ import annotations

import numpy as np
import pytest

from opsin.eventflow import ConfigError, viz


def const_flow(u: float, v: float, h: int, w: int) -> np.ndarray:
    out = np.empty((2, h, w), dtype=np.float32)
    out[0] = u
    out[1] = v
    return out


def test_all_is_sorted_and_complete():
    assert viz.__all__ == sorted(viz.__all__)
    for name in viz.__all__:
        assert hasattr(viz, name)


def test_convert_to_gray_shapes_and_weights():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0] = 100
    gray = viz.convert_to_gray(rgb)
    assert gray.shape == (2, 3, 3)
    assert gray.dtype == np.uint8
    assert (gray == round(0.299 * 100)).all()
    one = np.full((2, 3, 1), 7, dtype=np.uint8)
    assert (viz.convert_to_gray(one) == 7).all()
    assert viz.convert_to_gray(one[..., 0]).shape == (2, 3, 3)
    with pytest.raises(ConfigError):
        viz.convert_to_gray(np.zeros((2, 3, 4)))


def test_inputs_are_never_mutated():
    gen = np.random.default_rng(0)
    img = gen.integers(0, 255, (32, 40, 3)).astype(np.uint8)
    flow = gen.normal(0, 4, (2, 32, 40)).astype(np.float32)
    mask = gen.random((32, 40)) > 0.3
    copies = (img.copy(), flow.copy(), mask.copy())
    out = viz.draw_arrows(img, flow, step=4, mask=mask, convert_img_to_gray=False)
    dense = viz.draw_dense_flow(img, flow, mask)
    for original, kept in zip((img, flow, mask), copies):
        np.testing.assert_array_equal(original, kept)
    assert out is not img
    assert not np.shares_memory(out, img)
    assert not np.shares_memory(dense, img)
    assert not np.array_equal(out, img)

    x = gen.normal(0, 1, (2, 3, 2, 16, 16)).astype(np.float32)
    flows = [gen.normal(0, 2, (2, 3, 2, 8, 8)).astype(np.float32)]
    x_copy, level_copy = x.copy(), flows[0].copy()
    grid = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    viz.draw_flow_on_grid(x, flows, grid, lambda f: np.zeros((16, 16, 3), np.uint8), step=4)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(flows[0], level_copy)


def test_threshold_compares_the_length_not_its_square():
    black = np.zeros((16, 16, 3), dtype=np.uint8)
    # length 3: above sqrt(4) = 2 (so its square 9 passes a squared test) but below the 4 px threshold
    short = viz.draw_arrows(black, const_flow(3.0, 0.0, 16, 16), step=32, threshold_px=4)
    assert not short.any()
    exact = viz.draw_arrows(black, const_flow(4.0, 0.0, 16, 16), step=32, threshold_px=4)
    assert exact.any()
    long = viz.draw_arrows(black, const_flow(0.0, 5.0, 16, 16), step=32, threshold_px=4)
    assert long.any()


def test_last_partial_row_and_column_are_drawn():
    h, w, step = 20, 20, 16
    flow = np.zeros((2, h, w), dtype=np.float32)
    flow[:, 16, 16] = (3.0, 0.0)  # only the grid point of the partial last row and column moves
    out = viz.draw_arrows(np.zeros((h, w), np.uint8), flow, step=step)
    assert out[16, 16:20].any()
    assert not out[:12].any()


def test_mask_suppresses_arrows():
    flow = const_flow(5.0, 0.0, 16, 16)
    mask = np.zeros((16, 16), dtype=bool)
    assert not viz.draw_arrows(np.zeros((16, 16, 3), np.uint8), flow, step=8, mask=mask).any()


def test_rightward_flow_is_red():
    arrows = viz.get_arrows(const_flow(6.0, 0.0, 16, 16), step=32)
    drawn = arrows[arrows.any(axis=2)]
    assert drawn.size
    assert (drawn == (255, 0, 0)).all()
    flow = const_flow(1.0, 0.0, 8, 8)
    flow[0, 4, 4] = 3.0  # the largest magnitude gets the full value
    dense = viz.get_dense_flow(flow)
    np.testing.assert_array_equal(dense[4, 4], (178, 0, 0))  # 0.7 * pure red over black
    assert (dense[0, 0] == 0).all()  # the minimum magnitude maps to value 0
    down = viz.get_dense_flow(np.stack([np.zeros((2, 2)), np.array([[1.0, 2.0], [2.0, 2.0]])]))
    assert down[0, 1, 1] > down[0, 1, 0]  # a downward flow (90 degrees) is yellow-green, not red


def test_dense_mask_zeroes_flow():
    flow = const_flow(2.0, 0.0, 4, 4)
    flow[0, 0, 0] = 4.0
    mask = np.ones((4, 4), dtype=bool)
    mask[0, 0] = False
    img = np.full((4, 4, 3), 100, np.uint8)
    out = viz.draw_dense_flow(img, flow, mask)
    np.testing.assert_array_equal(out[0, 0], (30, 30, 30))  # masked: zero flow, the minimum: only the gray part
    assert out[1, 1, 0] > out[1, 1, 1]


def test_grid_tiling_places_samples_by_rows():
    t_len, batch, h, w = 2, 3, 8, 8
    x = np.zeros((t_len, batch, 1, h, w), dtype=np.float32)
    for b in range(batch):
        x[:, b] = b + 1
    flows = [np.zeros((t_len * batch, 2, h, w), dtype=np.float32)]
    grid = np.full((t_len, 2 * h, 2 * w, 3), 255, dtype=np.uint8)

    def make_img(feature: np.ndarray) -> np.ndarray:
        return np.full((h, w, 3), 10 * int(feature[0, 0, 0]), dtype=np.uint8)

    out = viz.draw_flow_on_grid(x, flows, grid, make_img, step=4)
    assert out is grid
    ncols = 2
    for t in range(t_len):
        for b in range(batch):
            r, c = b // ncols, b % ncols
            assert (grid[t, r * h : (r + 1) * h, c * w : (c + 1) * w] == 10 * (b + 1)).all()
        assert (grid[t, h:, w:] == 255).all()  # no sample 3: the tile is untouched
    with pytest.raises(ConfigError, match="grid"):
        viz.draw_flow_on_grid(x, flows, np.zeros((t_len, h, 2 * w, 3), np.uint8), make_img)


def test_grid_resizes_coarse_levels_with_scaled_vectors():
    h, w = 16, 16
    x = np.ones((1, 1, 1, h, w), dtype=np.float32)
    coarse = [const_flow(1.0, 0.0, 4, 4)[None, None], const_flow(0.0, 0.0, h, w)[None, None]]
    grid = np.zeros((1, h, w, 3), dtype=np.uint8)
    black = np.zeros((h, w, 3), np.uint8)
    viz.draw_flow_on_grid(x, coarse, grid, lambda f: black, scale=0, step=32, mask_by_input=False)
    # 1 px at width 4 is 4 px at width 16: the arrow from (0, 0) reaches column 4.
    assert grid[0, 0, 4].any()
    assert not grid[0, 0, 6:].any()
    grid[:] = 0
    viz.draw_flow_on_grid(x, coarse, grid, lambda f: black, scale=-1, step=32)
    assert not grid.any()  # zero finest flow: below the 1 px threshold
    dense = np.zeros((1, h, w, 3), dtype=np.uint8)
    viz.draw_flow_on_grid(x, coarse, dense, lambda f: black, scale=0, draw_dense=True)
    assert dense.shape == (1, h, w, 3)
