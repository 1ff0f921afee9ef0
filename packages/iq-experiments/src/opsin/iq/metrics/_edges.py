"""Edge finding for the sharpness metric: Canny + probabilistic Hough, pieces, directions and patches.

Follows Cenci et al. (2021, Remote Sens. 13:1593) as implemented by the original iquaflow: Canny edges, probabilistic
Hough segments, then the pieces, their directions and the patches around them that the ESF fit reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special
from skimage.feature import canny
from skimage.transform import probabilistic_hough_line

__all__ = [
    "DIRECTIONS",
    "Piece",
    "bounding_boxes",
    "contrast_batch",
    "cut_pieces",
    "detect_lines",
    "direction_of",
    "directions_of",
    "in_bounds",
    "other_patches",
    "patch_windows",
    "piece_angles",
]

#: Direction labels: X = vertical edges (profile along x), Y = horizontal edges, other = the rest.
DIRECTIONS: tuple[str, ...] = ("X", "Y", "other")

_THETAS = np.linspace(-np.pi / 2, np.pi / 2, 360, endpoint=False)


@dataclass(frozen=True)
class Piece:
    """A straight edge piece ``(x0, y0) -> (x1, y1)`` in pixel coordinates (x = column, y = row)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def theta(self) -> float:
        """``degrees(atan2(x1 - x0, y1 - y0)) mod 180``."""
        return math.degrees(math.atan2(self.x1 - self.x0, self.y1 - self.y0)) % 180.0

    @property
    def length(self) -> float:
        """Euclidean length."""
        return math.hypot(self.x1 - self.x0, self.y1 - self.y0)


def detect_lines(x: np.ndarray, edge_length: int, seed: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Canny (sigma 1, thresholds 0.1/0.25 of the 99th percentile) then probabilistic Hough lines.

    Args:
        x: one channel, float, NaN where invalid.
        edge_length: minimum line length.
        seed: seed of the Hough transform's random sampling.

    Returns:
        Lines as ``((x0, y0), (x1, y1))``.
    """
    valid = np.isfinite(x)
    if valid.sum() < 16:
        return []
    p99 = float(np.nanpercentile(x, 99))
    filled = np.where(valid, x, 0.0)
    edges = canny(filled, sigma=1, low_threshold=0.1 * p99, high_threshold=0.25 * p99, mask=valid)
    if not edges.any():
        return []
    return list(
        probabilistic_hough_line(edges, threshold=15, line_length=edge_length, line_gap=0, theta=_THETAS, rng=int(seed))
    )


def cut_pieces(lines: list[tuple[tuple[int, int], tuple[int, int]]], edge_length: int) -> np.ndarray:
    """Cut every line into ``edge_length`` pieces for each start offset ``0..L-1`` (ends rounded half to even).

    Along a line of length ``len`` the pieces start at every integer ``t`` with ``t + L <= len``, ordered by
    offset ``t % L`` then position; pieces whose rounded ends are less than ``L`` apart are dropped.

    Returns:
        ``(N, 4)`` integer array of pieces ``x0, y0, x1, y1``, in cutting order.
    """
    span = int(edge_length)
    if not lines:
        return np.zeros((0, 4), dtype=np.int64)
    ends = np.array([[x0, y0, x1, y1] for (x0, y0), (x1, y1) in lines], dtype=np.float64)
    dx, dy = ends[:, 2] - ends[:, 0], ends[:, 3] - ends[:, 1]
    length = np.hypot(dx, dy)
    counts = np.where(length >= span - 1e-5, np.floor(length - span + 1e-9) + 1, 0).clip(min=0).astype(np.int64)
    line = np.repeat(np.arange(len(lines)), counts)
    start = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.lexsort((start // span, start % span, line))
    line, start = line[order], start[order].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ux, uy = (dx / length)[line], (dy / length)[line]
    x0, y0 = ends[line, 0], ends[line, 1]
    pieces = np.stack(
        [
            np.rint(x0 + ux * start),
            np.rint(y0 + uy * start),
            np.rint(x0 + ux * (start + span)),
            np.rint(y0 + uy * (start + span)),
        ],
        axis=1,
    ).astype(np.int64)
    long_enough = np.hypot(pieces[:, 2] - pieces[:, 0], pieces[:, 3] - pieces[:, 1]) >= span - 1e-5
    return pieces[long_enough]


def piece_angles(pieces: np.ndarray) -> np.ndarray:
    """``degrees(atan2(x1 - x0, y1 - y0)) mod 180`` of every piece."""
    return np.degrees(np.arctan2(pieces[:, 2] - pieces[:, 0], pieces[:, 3] - pieces[:, 1])) % 180.0


def direction_of(theta: float) -> str:
    """``X`` for ``theta <= 15`` or ``>= 165``, ``Y`` for ``75..105``, else ``other``."""
    if theta <= 15 or theta >= 165:
        return "X"
    if 75 <= theta <= 105:
        return "Y"
    return "other"


def directions_of(angles: np.ndarray) -> np.ndarray:
    """:func:`direction_of` for many angles."""
    out = np.full(angles.shape, "other", dtype=object)
    out[(angles >= 75) & (angles <= 105)] = "Y"
    out[(angles <= 15) | (angles >= 165)] = "X"
    return out


def bounding_boxes(pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(r1, r2, c1, c2)``: the min/max row and min/max column of every piece."""
    rows, cols = pieces[:, [1, 3]], pieces[:, [0, 2]]
    return rows.min(axis=1), rows.max(axis=1), cols.min(axis=1), cols.max(axis=1)


def in_bounds(pieces: np.ndarray, shape: tuple[int, ...], ps: int) -> np.ndarray:
    """False for the pieces within ``2 ps`` of the border."""
    r1, r2, c1, c2 = bounding_boxes(pieces)
    margin = 2 * ps
    return ~((r1 < margin) | (c1 < margin) | (r2 >= shape[0] - margin) | (c2 >= shape[1] - margin))


def contrast_batch(patches: np.ndarray, ps: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """The contrast gates for a stack of patches ``(N, rows, width)``; True where a patch passes.

    Dark and bright samples are the first/last ``ps - 1`` columns of the inner rows (rows 3..-3). A patch passes
    when ``mean(b)/mean(d) > alpha``, ``std(b)/std(patch) < beta``, ``std(d)/std(patch) < beta`` and
    ``q10(b)/q90(d) > gamma``; any NaN rejects it.
    """
    n = patches.shape[0]
    if n == 0 or patches.shape[1] < 7:
        return np.zeros(n, dtype=bool)
    inner = patches[:, 3:-3]
    left = inner[:, :, : ps - 1].reshape(n, -1)
    right = inner[:, :, -(ps - 1) :].reshape(n, -1)
    swap = (left.mean(axis=1) > right.mean(axis=1))[:, None]
    bright = np.where(swap, left, right)
    dark = np.where(swap, right, left)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = patches.reshape(n, -1).std(axis=1)
        md = dark.mean(axis=1)
        q90d = np.percentile(dark, 90, axis=1)
        q10b = np.percentile(bright, 10, axis=1)
        ok = (
            (bright.mean(axis=1) / md > alpha)
            & (bright.std(axis=1) / sd < beta)
            & (dark.std(axis=1) / sd < beta)
            & (q10b / q90d > gamma)
            & (sd > 0)
            & (md > 0)
            & (q90d > 0)
        )
    return np.asarray(ok & np.isfinite(patches.reshape(n, -1)).all(axis=1))


def patch_windows(piece_rc: np.ndarray, direction: str, edge_length: int, ps: int) -> tuple[np.ndarray, np.ndarray]:
    """Row/column index grids of the X or Y patches of many pieces (``piece_rc`` = ``(N, 2)`` of ``r1, c1``).

    Returns:
        ``(rows, cols)`` index arrays broadcasting to ``(N, rows, width)`` before orientation.
    """
    L = int(edge_length)  # noqa: N806
    r1, c1 = piece_rc[:, 0], piece_rc[:, 1]
    if direction == "X":
        rows = r1[:, None] + np.arange(-3, L + 3)[None, :]
        cols = c1[:, None] + np.arange(-ps, ps + 1)[None, :]
    else:
        rows = r1[:, None] + np.arange(-ps, ps + 1)[None, :]
        cols = c1[:, None] + np.arange(-3, L + 4)[None, :]
    return rows[:, :, None], cols[:, None, :]


def other_patches(x: np.ndarray, pieces: np.ndarray, ps: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Rotated patches of oblique pieces (``(N, 4)``, see :func:`cut_pieces`), all at once.

    The crop is ``2 ps`` around the piece; each patch is what ``ndimage.rotate(crop, -theta, order=3,
    mode="nearest")`` followed by a centre crop of ``+/-(length / 2 + 3)`` rows and ``+/-ps`` columns gives,
    sampled with one cubic-spline interpolation of the whole channel (identical geometry; the spline coefficients
    differ from the per-crop ones only by the far-away boundary handling).

    Returns:
        ``(valid, patches)``: a boolean array and, per piece, the patch or None (border, NaN in the crop).
    """
    n = len(pieces)
    out: list[np.ndarray | None] = [None] * n
    valid = np.zeros(n, dtype=bool)
    if n == 0:
        return valid, out
    finite = np.isfinite(x)
    coeffs = ndimage.spline_filter(np.where(finite, x, 0.0), order=3, mode="nearest")
    bad = np.pad(np.cumsum(np.cumsum(~finite, axis=0), axis=1), ((1, 0), (1, 0)))
    m = 2 * ps
    r1, r2, c1, c2 = bounding_boxes(pieces)
    r0, c0 = r1 - m, c1 - m
    hc, wc = r2 + m + 1 - r0, c2 + m + 1 - c0
    nan_in_crop = (bad[r2 + m + 1, c2 + m + 1] - bad[r0, c2 + m + 1] - bad[r2 + m + 1, c0] + bad[r0, c0]) > 0
    ang = -piece_angles(pieces)
    cs, sn = special.cosdg(ang), special.sindg(ang)
    # output plane shape of ndimage.rotate(reshape=True)
    by = np.stack([np.zeros(n), np.zeros(n), hc, hc])
    bx = np.stack([np.zeros(n), wc, np.zeros(n), wc])
    oy = cs * by + sn * bx
    ox = -sn * by + cs * bx
    out_h = (np.ptp(oy, axis=0) + 0.5).astype(int)
    out_w = (np.ptp(ox, axis=0) + 0.5).astype(int)
    ocy, ocx = (out_h - 1) / 2.0, (out_w - 1) / 2.0
    off_y = (hc - 1) / 2.0 - (cs * ocy + sn * ocx)
    off_x = (wc - 1) / 2.0 - (-sn * ocy + cs * ocx)
    lengths = np.hypot(pieces[:, 2] - pieces[:, 0], pieces[:, 3] - pieces[:, 1])
    hr = (lengths / 2 + 3).astype(int)
    cr, cc = out_h // 2, out_w // 2
    ok = ~nan_in_crop & (cr - hr >= 0) & (cc - ps >= 0) & (cc + ps + 1 <= out_w)
    cols_rel = np.arange(-ps, ps + 1)
    for h in np.unique(hr[ok]):
        idx = np.nonzero(ok & (hr == h))[0]
        ii = (cr[idx, None] + np.arange(-h, h)[None, :]).astype(np.float64)[:, :, None]
        jj = (cc[idx, None] + cols_rel[None, :]).astype(np.float64)[:, None, :]
        ci, si = cs[idx, None, None], sn[idx, None, None]
        yy = ci * ii + si * jj + off_y[idx, None, None] + r0[idx, None, None]
        xx = -si * ii + ci * jj + off_x[idx, None, None] + c0[idx, None, None]
        vals = ndimage.map_coordinates(coeffs, [yy.ravel(), xx.ravel()], order=3, mode="nearest", prefilter=False)
        vals = vals.reshape(len(idx), 2 * int(h), 2 * ps + 1)
        for k, i in enumerate(idx):
            out[int(i)] = vals[k]
        valid[idx] = True
    return valid, out
