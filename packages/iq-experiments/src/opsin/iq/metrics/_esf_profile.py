"""The edge spread function (ESF) of edge patches: sub-pixel edge line, transects, splines, centring.

A patch is oriented so the edge runs along its rows and the profile along its columns. Per inner row a cubic fit
of value against column gives the edge position (its inflection); a straight line through those positions is the
edge. Transects every half row sample the patch by nearest pixel; each is resampled on a 0.1 px grid by a cubic
spline through (distance to the edge, value), and the ESF is their mean, rolled so its steepest step is central.

The geometry follows the original iquaflow, including its quirks, because they move the numbers it reports: the
edge line is fitted against the inner-row index (row - 3) but evaluated at patch rows, transects pass through the
line's intercept rather than the edge, and the distance to the edge is measured from the edge point of the
transect's own row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EdgeLine", "EsfProfile", "edge_lines", "esf_grid", "esf_profiles"]

#: A transect needs this many usable samples; an edge needs this many transects.
MIN_TRANSECTS = 5


@dataclass(frozen=True)
class EdgeLine:
    """The fitted edge ``col = slope * i + intercept``, with ``i`` the inner-row index (patch row - 3)."""

    slope: float
    intercept: float


@dataclass(frozen=True)
class EsfProfile:
    """One edge's mean ESF on :func:`esf_grid`, rolled by ``shift`` samples to centre its steepest step."""

    esf: np.ndarray
    shift: int


def esf_grid(width: int) -> np.ndarray:
    """The ESF sample positions for a patch ``width`` columns wide (13 -> -6.0, -5.9, ..., 5.9)."""
    return np.arange((-width) // 2 + 1, width // 2, 0.1)


def edge_lines(patches: np.ndarray) -> list[EdgeLine | None]:
    """Sub-pixel edge lines of a stack of patches ``(B, rows, width)`` (None where a row fit is degenerate)."""
    nb, _rows, width = patches.shape
    inner = patches[:, 3:-3, :]  # (B, n, width)
    n = inner.shape[1]
    cols = np.arange(width, dtype=np.float64)
    vander = np.vander(cols, 4)  # columns x^3, x^2, x, 1: the order np.polyfit returns
    # Least squares for every row of every patch at once (the same solution np.polyfit gives row by row).
    coef = np.linalg.lstsq(vander, inner.reshape(-1, width).T, rcond=None)[0]
    cubic, quadratic = coef[0].reshape(nb, n), coef[1].reshape(nb, n)
    out: list[EdgeLine | None] = [None] * nb
    degenerate = np.any(cubic == 0, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inflection = -quadratic / (3.0 * cubic)
    index = np.vander(np.arange(n, dtype=np.float64), 2)
    line = np.linalg.lstsq(index, np.where(degenerate[:, None], 0.0, inflection).T, rcond=None)[0]
    for b in range(nb):
        if not degenerate[b] and np.isfinite(line[:, b]).all():
            out[b] = EdgeLine(float(line[0, b]), float(line[1, b]))
    return out


def _transects(patch: np.ndarray, line: EdgeLine) -> tuple[np.ndarray, np.ndarray]:
    """``(distance, value)`` samples ``(transects, width)`` of the transects that stay inside the patch."""
    nrows, width = patch.shape
    m, c = line.slope, line.intercept
    cols = np.arange(width, dtype=np.float64)
    rows = np.arange(3.0, nrows - 3, 0.5)
    along = rows[:, None] + m * c - m * cols[None, :]  # the transect's row at each column
    finite = np.all(np.isfinite(along), axis=1)
    picked = np.rint(np.clip(np.where(finite[:, None], along, -1.0), -1.0, nrows)).astype(int)
    inside = finite & ~np.any((picked <= 0) | (picked >= nrows), axis=1)
    to_edge = cols[None, :] - (m * rows[:, None] + c)  # column offset from the edge point of the row
    across = -m * (cols - c)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.sign(to_edge) * np.hypot(to_edge, across[None, :])
    picked, dist = picked[inside], dist[inside]
    return dist, patch[picked, np.arange(width)[None, :]]


def _tridiagonal_solve(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Thomas algorithm over the last axis, for many systems at once."""
    n = diag.shape[-1]
    c = np.empty_like(diag)
    d = np.empty_like(rhs)
    c[:, 0] = upper[:, 0] / diag[:, 0]
    d[:, 0] = rhs[:, 0] / diag[:, 0]
    for i in range(1, n):
        denom = diag[:, i] - lower[:, i] * c[:, i - 1]
        if i < n - 1:
            c[:, i] = upper[:, i] / denom
        d[:, i] = (rhs[:, i] - lower[:, i] * d[:, i - 1]) / denom
    out = np.empty_like(rhs)
    out[:, -1] = d[:, -1]
    for i in range(n - 2, -1, -1):
        out[:, i] = d[:, i] - c[:, i] * out[:, i + 1]
    return out


def _splines(knots: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Not-a-knot cubic splines through each row ``(knots, values)`` (sorted), evaluated on ``x``.

    The same curves as ``scipy.interpolate.CubicSpline`` row by row: the slopes solve a tridiagonal system
    (the not-a-knot end conditions keep it tridiagonal), then each piece is a cubic Hermite segment.
    """
    t, n = knots.shape
    h = np.diff(knots, axis=1)
    slope = np.diff(values, axis=1) / h
    lower, diag, upper, rhs = (np.zeros((t, n)) for _ in range(4))
    lower[:, 1:-1], diag[:, 1:-1], upper[:, 1:-1] = h[:, 1:], 2.0 * (h[:, :-1] + h[:, 1:]), h[:, :-1]
    rhs[:, 1:-1] = 3.0 * (h[:, 1:] * slope[:, :-1] + h[:, :-1] * slope[:, 1:])
    span0 = knots[:, 2] - knots[:, 0]
    diag[:, 0], upper[:, 0] = h[:, 1], span0
    rhs[:, 0] = ((h[:, 0] + 2.0 * span0) * h[:, 1] * slope[:, 0] + h[:, 0] ** 2 * slope[:, 1]) / span0
    span1 = knots[:, -1] - knots[:, -3]
    diag[:, -1], lower[:, -1] = h[:, -2], span1
    rhs[:, -1] = (h[:, -1] ** 2 * slope[:, -2] + (2.0 * span1 + h[:, -1]) * h[:, -2] * slope[:, -1]) / span1
    deriv = _tridiagonal_solve(lower, diag, upper, rhs)
    # Interval of every x in every row: one sorted search over rows laid end to end.
    offset = (np.arange(t, dtype=np.float64) * (np.ptp(knots) + np.ptp(x) + 10.0))[:, None]
    flat = np.searchsorted((knots + offset).ravel(), (x[None, :] + offset).ravel(), side="right")
    k = np.clip(flat.reshape(t, x.size) - np.arange(t)[:, None] * n - 1, 0, n - 2)
    rows = np.arange(t)[:, None]
    x0, width = knots[rows, k], h[rows, k]
    u = (x[None, :] - x0) / width
    u2, u3 = u * u, u * u * u
    return np.asarray(
        (2 * u3 - 3 * u2 + 1) * values[rows, k]
        + (u3 - 2 * u2 + u) * width * deriv[rows, k]
        + (-2 * u3 + 3 * u2) * values[rows, k + 1]
        + (u3 - u2) * width * deriv[rows, k + 1]
    )


def esf_profiles(patches: np.ndarray, lines: list[EdgeLine | None]) -> list[EsfProfile | None]:
    """The centred ESF of every patch of a stack ``(B, rows, width)`` with its edge line.

    Returns:
        Per patch the profile, or None (no line, fewer than five usable transects, repeated distances).
    """
    nb, _nrows, width = patches.shape
    x = esf_grid(width)
    out: list[EsfProfile | None] = [None] * nb
    owner, dists, values = [], [], []
    for b, line in enumerate(lines):
        if line is None:
            continue
        dist, vals = _transects(patches[b], line)
        owner.append(np.full(dist.shape[0], b))
        dists.append(dist)
        values.append(vals)
    if not dists:
        return out
    edge_of = np.concatenate(owner)
    dist, vals = np.concatenate(dists), np.concatenate(values)
    order = np.argsort(dist, axis=1, kind="stable")
    dist = np.take_along_axis(dist, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    usable = np.all(np.diff(dist, axis=1) > 0, axis=1) & np.all(np.isfinite(dist), axis=1)
    curves = np.zeros((dist.shape[0], x.size))
    if usable.any():
        curves[usable] = _splines(dist[usable], vals[usable], x)
    usable &= ~np.all(curves == 0, axis=1)
    central = np.nonzero((x >= -3) & (x <= 3))[0]
    for b in np.unique(edge_of):
        mine = curves[(edge_of == b) & usable]
        if mine.shape[0] < MIN_TRANSECTS:
            continue
        esf = mine.mean(axis=0)
        step = np.abs(np.diff(esf[central]))
        shift = central.size // 2 - int(np.argmax(step))
        out[int(b)] = EsfProfile(np.roll(esf, shift), shift)
    return out
