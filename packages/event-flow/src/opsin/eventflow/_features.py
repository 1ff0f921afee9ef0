"""NumPy feature builders: events -> (T, C, H, W) float32 arrays, vectorised and independent of event order.

Every builder has the signature ``f(events, output_array, total_tbins_delta_t, downsampling_factor=0, reset=True,
**kwargs)`` and fills ``output_array`` in place. Timestamps are relative to the window start; dt = total / T; bin
b = min(floor(t / dt), T - 1); events with t < 0 are dropped. Downsampling by ds shifts x and y right by ds and
scales the per-event increment to k = 1 / (max_incr_per_pixel * 4**ds).
"""

from __future__ import annotations

import numpy as np

from opsin.eventflow._events import as_event_cd
from opsin.eventflow.errors import ConfigError

__all__ = ["diff", "event_cube", "event_cube_paper", "histo", "multi_channel_timesurface", "timesurface"]


def _prepare(
    events: np.ndarray, output_array: np.ndarray, downsampling_factor: int, reset: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if output_array.ndim != 4:
        message = f"output_array must be (T, C, H, W), got shape {output_array.shape}"
        raise ConfigError(message)
    if reset:
        output_array[...] = 0
    ev = as_event_cd(events)
    h, w = output_array.shape[2], output_array.shape[3]
    t = ev["t"].astype(np.int64)
    x = ev["x"].astype(np.int64) >> downsampling_factor
    y = ev["y"].astype(np.int64) >> downsampling_factor
    keep = (t >= 0) & (x < w) & (y < h)
    if not keep.all():
        t, x, y, ev = t[keep], x[keep], y[keep], ev[keep]
    return t, x, y, ev["p"].astype(np.int64)


def _bins(t: np.ndarray, total: float, num_bins: int) -> np.ndarray:
    dt = total / num_bins
    return np.minimum(np.floor(t / dt).astype(np.int64), num_bins - 1)


def _increment(max_incr_per_pixel: float, downsampling_factor: int) -> float:
    return 1.0 / (float(max_incr_per_pixel) * 4.0**downsampling_factor)


def histo(
    events: np.ndarray,
    output_array: np.ndarray,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    max_incr_per_pixel: float = 5,
) -> None:
    """Per-polarity event counts: V[b, p, y, x] = min(1, k * n); channel 0 = OFF, 1 = ON."""
    t, x, y, p = _prepare(events, output_array, downsampling_factor, reset)
    n_t, c, h, w = output_array.shape
    b = _bins(t, total_tbins_delta_t, n_t)
    flat = ((b * c + p) * h + y) * w + x
    counts = np.bincount(flat, minlength=output_array.size).reshape(output_array.shape)
    k = _increment(max_incr_per_pixel, downsampling_factor)
    output_array += (k * counts).astype(output_array.dtype)
    np.minimum(output_array, 1, out=output_array)


def diff(
    events: np.ndarray,
    output_array: np.ndarray,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    max_incr_per_pixel: float = 5,
) -> None:
    """Signed count difference: V[b, 0, y, x] = clip(k * (n_ON - n_OFF), -1, 1)."""
    t, x, y, p = _prepare(events, output_array, downsampling_factor, reset)
    n_t, _, h, w = output_array.shape
    b = _bins(t, total_tbins_delta_t, n_t)
    flat = (b * h + y) * w + x
    sign = np.where(p > 0, 1.0, -1.0)
    sums = np.bincount(flat, weights=sign, minlength=n_t * h * w).reshape(n_t, h, w)
    k = _increment(max_incr_per_pixel, downsampling_factor)
    output_array[:, 0] += (k * sums).astype(output_array.dtype)
    np.clip(output_array, -1, 1, out=output_array)


def timesurface(
    events: np.ndarray,
    output_array: np.ndarray,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    normed: bool = True,
) -> None:
    """Latest event time per bin and polarity: V[b, p, y, x] = max (t - b*dt) / dt (raw us if not ``normed``).

    Pixels without an event hold 0; events whose offset falls outside [0, dt) are dropped.
    """
    t, x, y, p = _prepare(events, output_array, downsampling_factor, reset)
    n_t, c, h, w = output_array.shape
    dt = total_tbins_delta_t / n_t
    b = _bins(t, total_tbins_delta_t, n_t)
    offset = t - b * dt
    keep = (offset >= 0) & (offset < dt)
    value = offset[keep] / dt if normed else offset[keep].astype(np.float64)
    flat = ((b[keep] * c + p[keep]) * h + y[keep]) * w + x[keep]
    view = output_array.reshape(-1)
    np.maximum.at(view, flat, value.astype(output_array.dtype))


def multi_channel_timesurface(
    events: np.ndarray,
    output_array: np.ndarray,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    normed: bool = True,
) -> None:
    """Timesurface over T*M micro-bins of total/(T*M) us (M = C/2); channel 2m + p of bin b is micro-bin b*M + m."""
    n_t, c, h, w = output_array.shape
    if c % 2:
        message = f"multi_channel_timesurface needs an even channel count, got {c}"
        raise ConfigError(message)
    view = output_array.reshape(n_t * (c // 2), 2, h, w)
    timesurface(events, view, total_tbins_delta_t, downsampling_factor, reset, normed)


def event_cube(
    events: np.ndarray,
    output_array: np.ndarray,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    split_polarity: bool = True,
    max_incr_per_pixel: float = 5,
) -> None:
    """Temporal bilinear voxel grid over N = T*M micro-bins (M = C/2 with ``split_polarity``, else M = C).

    Per event tau = t*N/total - 0.5, l = floor(tau); micro-bin l gets k*(1 - (tau - l))*s and l + 1 gets
    k*(tau - l)*s (when inside [0, N)); s = 1 in channel p (split) or s = +-1 (signed). Then clipped to [0, 1] or
    [-1, 1].
    """
    t, x, y, p = _prepare(events, output_array, downsampling_factor, reset)
    n_t, c, h, w = output_array.shape
    n_pol = 2 if split_polarity else 1
    if c % n_pol:
        message = f"event_cube with split_polarity needs an even channel count, got {c}"
        raise ConfigError(message)
    n_micro = n_t * (c // n_pol)
    tau = t.astype(np.float64) * n_micro / float(total_tbins_delta_t) - 0.5
    left = np.floor(tau).astype(np.int64)
    w_right = tau - left
    k = _increment(max_incr_per_pixel, downsampling_factor)
    if split_polarity:
        chan = p
        sign = np.ones(t.size)
    else:
        chan = np.zeros_like(p)
        sign = np.where(p > 0, 1.0, -1.0)
    size = n_micro * n_pol * h * w
    acc = np.zeros(size, dtype=np.float64)
    for bins, weight in ((left, 1.0 - w_right), (left + 1, w_right)):
        ok = (bins >= 0) & (bins < n_micro)
        flat = ((bins[ok] * n_pol + chan[ok]) * h + y[ok]) * w + x[ok]
        acc += np.bincount(flat, weights=k * weight[ok] * sign[ok], minlength=size)
    view = output_array.reshape(-1)
    view += acc.astype(output_array.dtype)
    np.clip(output_array, 0 if split_polarity else -1, 1, out=output_array)


def event_cube_paper(
    events: np.ndarray,
    output_array: np.ndarray,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    max_incr_per_pixel: float = 63.75,
) -> None:
    """The 10-channel event cube of the paper (M = 5 micro-bins, split polarity, max_incr_per_pixel 63.75)."""
    event_cube(
        events,
        output_array,
        total_tbins_delta_t,
        downsampling_factor,
        reset,
        split_polarity=True,
        max_incr_per_pixel=max_incr_per_pixel,
    )
