"""Edge finding for the sharpness metric: Canny + probabilistic Hough, pieces, directions and patches.

Follows Cenci et al. (2021, Remote Sens. 13:1593) as implemented by the original iquaflow; see the package
specification, section 4.3, steps 1-3.
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
    "contrast_batch",
    "contrast_ok",
    "cut_pieces",
    "detect_lines",
    "direction_of",
    "extract_patch",
    "in_bounds",
    "other_patches",
    "patch_windows",
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


def cut_pieces(lines: list[tuple[tuple[int, int], tuple[int, int]]], edge_length: int) -> list[Piece]:
    """Cut every line into ``edge_length`` pieces for each start offset ``0..L-1`` (rounded ends)."""
    L = int(edge_length)  # noqa: N806
    pieces: list[Piece] = []
    for (x0, y0), (x1, y1) in lines:
        dx, dy = float(x1 - x0), float(y1 - y0)
        length = math.hypot(dx, dy)
        if length < L - 1e-5:
            continue
        ux, uy = dx / length, dy / length
        for j in range(L):
            t = float(j)
            while t + L <= length + 1e-9:
                a = (round(x0 + ux * t), round(y0 + uy * t))
                b = (round(x0 + ux * (t + L)), round(y0 + uy * (t + L)))
                if math.hypot(b[0] - a[0], b[1] - a[1]) >= L - 1e-5:
                    pieces.append(Piece(int(a[0]), int(a[1]), int(b[0]), int(b[1])))
                t += L
    return pieces


def direction_of(theta: float) -> str:
    """``X`` for ``theta <= 15`` or ``>= 165``, ``Y`` for ``75..105``, else ``other``."""
    if theta <= 15 or theta >= 165:
        return "X"
    if 75 <= theta <= 105:
        return "Y"
    return "other"


def in_bounds(piece: Piece, shape: tuple[int, ...], ps: int) -> bool:
    """False when the piece lies within ``2 ps`` of the border."""
    h, w = shape[0], shape[1]
    r1, r2 = min(piece.y0, piece.y1), max(piece.y0, piece.y1)
    c1, c2 = min(piece.x0, piece.x1), max(piece.x0, piece.x1)
    m = 2 * ps
    return not (r1 < m or c1 < m or r2 >= h - m or c2 >= w - m)


def extract_patch(x: np.ndarray, piece: Piece, direction: str, edge_length: int, ps: int) -> np.ndarray | None:
    """Cut the patch across a piece, oriented so that the edge runs along the rows (profile along columns).

    Returns:
        The patch (``rows x (2 ps + 1)``), or None near the border.
    """
    h, w = x.shape
    r1, r2 = min(piece.y0, piece.y1), max(piece.y0, piece.y1)
    c1, c2 = min(piece.x0, piece.x1), max(piece.x0, piece.x1)
    m = 2 * ps
    if r1 < m or c1 < m or r2 >= h - m or c2 >= w - m:
        return None
    L = int(edge_length)  # noqa: N806
    if direction == "X":
        return x[r1 - 3 : r1 + L + 3, c1 - ps : c1 + ps + 1]
    if direction == "Y":
        return np.rot90(x[r1 - ps : r1 + ps + 1, c1 - 3 : c1 + L + 4])
    crop = x[r1 - m : r2 + m + 1, c1 - m : c2 + m + 1]
    if not np.isfinite(crop).all():
        return None
    rot = ndimage.rotate(crop, -piece.theta, order=3, mode="nearest")
    cr, cc = rot.shape[0] // 2, rot.shape[1] // 2
    hr = int(piece.length / 2 + 3)
    if cr - hr < 0 or cc - ps < 0 or cc + ps + 1 > rot.shape[1]:
        return None
    return rot[cr - hr : cr + hr, cc - ps : cc + ps + 1]


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


def contrast_ok(patch: np.ndarray, ps: int, alpha: float, beta: float, gamma: float) -> bool:
    """The contrast gates of :func:`contrast_batch` for one patch."""
    return bool(contrast_batch(patch[None], ps, alpha, beta, gamma)[0])


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


def other_patches(x: np.ndarray, pieces: list[Piece], ps: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Rotated patches of oblique pieces, all at once (the batched equivalent of :func:`extract_patch`).

    Each patch is what ``ndimage.rotate(crop, -theta, order=3, mode="nearest")`` followed by the centre crop gives,
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
    r1 = np.array([min(p.y0, p.y1) for p in pieces])
    r2 = np.array([max(p.y0, p.y1) for p in pieces])
    c1 = np.array([min(p.x0, p.x1) for p in pieces])
    c2 = np.array([max(p.x0, p.x1) for p in pieces])
    r0, c0 = r1 - m, c1 - m
    hc, wc = r2 + m + 1 - r0, c2 + m + 1 - c0
    nan_in_crop = (bad[r2 + m + 1, c2 + m + 1] - bad[r0, c2 + m + 1] - bad[r2 + m + 1, c0] + bad[r0, c0]) > 0
    ang = np.array([-p.theta for p in pieces])
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
    hr = np.array([int(p.length / 2 + 3) for p in pieces])
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
