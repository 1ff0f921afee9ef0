"""Bringing a predicted flow onto a ground-truth frame: temporal association, spatial scaling and validity masks.

A prediction F_b covers the bin ``[s_b, s_b + delta_t)`` and is in pixels per delta_t at the network resolution
(h, w). A ground-truth frame is the displacement over ``[g0, g1)`` at the label resolution (H_gt, W_gt). Everything
here is numpy float64 (torch tensors are accepted and copied to the CPU); nothing modifies its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from opsin.eventflow.errors import ConfigError

__all__ = [
    "ASSOCIATION_MODES",
    "as_numpy",
    "associate_predictions",
    "bilinear_lookup",
    "event_mask",
    "event_mask_from_features",
    "prediction_for_interval",
    "resize_mask",
    "upsample_flow",
    "valid_mask",
]

#: ``integrate`` propagates positions through every overlapping bin; ``scale`` rescales the bin of largest overlap.
ASSOCIATION_MODES = ("integrate", "scale")

Crop = tuple[int, int, int, int]


def as_numpy(array: Any, dtype: Any = np.float64) -> np.ndarray:
    """Returns ``array`` (numpy array or torch tensor, on any device) as a numpy array of ``dtype``."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=dtype)


def _check_flow(flow: np.ndarray, name: str = "flow") -> None:
    if flow.ndim != 3 or flow.shape[0] != 2:
        message = f"{name} must have shape (2, H, W), got {tuple(flow.shape)}"
        raise ConfigError(message)


def bilinear_lookup(field: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Samples a (C, H, W) field at real positions, bilinearly, clamping positions to the image border.

    Pixel centres sit at integer coordinates.

    Args:
        field: (C, H, W) values.
        xs: x positions (any shape).
        ys: y positions (same shape as ``xs``).

    Returns:
        (C, *xs.shape) float64 samples.
    """
    h, w = field.shape[1:]
    x = np.clip(np.asarray(xs, dtype=np.float64), 0.0, w - 1.0)
    y = np.clip(np.asarray(ys, dtype=np.float64), 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    f = field.astype(np.float64, copy=False)
    top = f[:, y0, x0] * (1.0 - fx) + f[:, y0, x1] * fx
    bottom = f[:, y1, x0] * (1.0 - fx) + f[:, y1, x1] * fx
    return np.asarray(top * (1.0 - fy) + bottom * fy)


def upsample_flow(flow: Any, shape: Sequence[int]) -> np.ndarray:
    """Resizes a flow field bilinearly to ``shape`` and rescales its components to the new pixel size.

    The resize maps pixel areas onto pixel areas (the centre of output pixel i samples input position
    (i + 0.5) * w / W - 0.5), so u is multiplied by W/w and v by H/h.

    Args:
        flow: (2, h, w) flow in px at resolution (h, w) (numpy or torch).
        shape: the target (H, W).

    Returns:
        (2, H, W) float64 flow in px at the target resolution (a copy even when the size does not change).
    """
    f = as_numpy(flow)
    _check_flow(f)
    h, w = f.shape[1:]
    big_h, big_w = int(shape[0]), int(shape[1])
    if (h, w) == (big_h, big_w):
        return f.copy()
    xs = (np.arange(big_w, dtype=np.float64) + 0.5) * (w / big_w) - 0.5
    ys = (np.arange(big_h, dtype=np.float64) + 0.5) * (h / big_h) - 0.5
    gx, gy = np.meshgrid(xs, ys)
    out = bilinear_lookup(f, gx, gy)
    out[0] *= big_w / w
    out[1] *= big_h / h
    return out


def associate_predictions(
    flows: Any,
    starts: Any,
    delta_t: int,
    g0: int,
    g1: int,
    mode: Literal["integrate", "scale"] = "integrate",
) -> np.ndarray | None:
    """The predicted displacement over the GT interval ``[g0, g1)``, at the prediction resolution.

    ``integrate``: positions start on the pixel grid p = x; for each bin b overlapping the interval, in time order,
    p <- p + alpha_b * F_b(p) with alpha_b = |overlap| / delta_t and a bilinear lookup (border-clamped); the result is
    p - x. Inside a single bin this is F_b * (g1 - g0) / delta_t. ``scale``: that rule applied to the bin of largest
    overlap (the earliest one on ties).

    Args:
        flows: (N, 2, h, w) predictions in px per ``delta_t``.
        starts: (N,) bin starts (us); bin i is ``[starts[i], starts[i] + delta_t)``.
        delta_t: the bin length (us).
        g0: GT interval start (us).
        g1: GT interval end (us), > g0.
        mode: one of :data:`ASSOCIATION_MODES`.

    Returns:
        (2, h, w) float64 displacement in px over ``[g0, g1)``, or None when the bins do not cover the whole interval.

    Raises:
        ConfigError: unknown mode, bad shapes, ``delta_t <= 0`` or an empty interval.
    """
    if mode not in ASSOCIATION_MODES:
        message = f"association mode must be one of {ASSOCIATION_MODES}, got {mode!r}"
        raise ConfigError(message)
    if delta_t <= 0 or g1 <= g0:
        message = f"need delta_t > 0 and g1 > g0, got delta_t={delta_t}, [{g0}, {g1})"
        raise ConfigError(message)
    f = as_numpy(flows)
    s = as_numpy(starts, np.int64).reshape(-1)
    if f.ndim != 4 or f.shape[1] != 2 or f.shape[0] != s.shape[0]:
        message = f"flows must be (N, 2, h, w) with N = len(starts), got {tuple(f.shape)} and {s.shape[0]} starts"
        raise ConfigError(message)
    overlap = np.minimum(s + delta_t, g1) - np.maximum(s, g0)
    idx = np.flatnonzero(overlap > 0)
    if idx.size == 0 or int(overlap[idx].sum()) < g1 - g0:
        return None
    idx = idx[np.argsort(s[idx], kind="stable")]
    if mode == "scale":
        best = int(idx[np.argmax(overlap[idx])])
        return np.asarray(f[best] * ((g1 - g0) / float(delta_t)))
    h, w = f.shape[2:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    px, py = xs.copy(), ys.copy()
    for i in idx.tolist():
        alpha = overlap[i] / float(delta_t)
        step = bilinear_lookup(f[i], px, py)
        px += alpha * step[0]
        py += alpha * step[1]
    return np.stack([px - xs, py - ys])


def prediction_for_interval(
    flows: Any,
    starts: Any,
    delta_t: int,
    g0: int,
    g1: int,
    gt_shape: Sequence[int],
    mode: Literal["integrate", "scale"] = "integrate",
) -> np.ndarray | None:
    """:func:`associate_predictions` followed by :func:`upsample_flow` to ``gt_shape`` (H_gt, W_gt)."""
    flow = associate_predictions(flows, starts, delta_t, g0, g1, mode)
    return None if flow is None else upsample_flow(flow, gt_shape)


def event_mask(
    events: np.ndarray,
    t0: int,
    t1: int,
    shape: Sequence[int],
    sensor_shape: Sequence[int] | None = None,
    *,
    assume_sorted: bool = False,
) -> np.ndarray:
    """Pixels of a (H, W) grid that received at least one event in ``[t0, t1)``.

    Args:
        events: structured events with fields x, y, t (sorted by t makes the time selection a binary search).
        t0: interval start (us), same time base as ``events['t']``.
        t1: interval end (us).
        shape: the grid (H, W), usually the GT resolution.
        sensor_shape: the events' (height, width); sensor pixel x maps to grid column floor(x * W / width).
            Defaults to ``shape``.
        assume_sorted: the events are sorted by t (skips the O(N) check before the binary search).

    Returns:
        (H, W) bool mask.

    Raises:
        ConfigError: an event lies outside ``sensor_shape``.
    """
    big_h, big_w = int(shape[0]), int(shape[1])
    sens_h, sens_w = (big_h, big_w) if sensor_shape is None else (int(sensor_shape[0]), int(sensor_shape[1]))
    t = events["t"]
    if assume_sorted or (t.size > 1 and bool(np.all(t[1:] >= t[:-1]))):
        lo, hi = np.searchsorted(t, [t0, t1], side="left")
        sel = events[lo:hi]
    else:
        sel = events[(t >= t0) & (t < t1)]
    mask = np.zeros((big_h, big_w), dtype=bool)
    if sel.size == 0:
        return mask
    x = sel["x"].astype(np.int64)
    y = sel["y"].astype(np.int64)
    if x.max() >= sens_w or y.max() >= sens_h:
        message = f"events reach ({int(x.max())}, {int(y.max())}) outside the sensor size {sens_w}x{sens_h}"
        raise ConfigError(message)
    mask[y * big_h // sens_h, x * big_w // sens_w] = True
    return mask


def resize_mask(mask: Any, shape: Sequence[int]) -> np.ndarray:
    """Resizes a (h, w) bool mask to (H, W) by nearest lookup of the containing source pixel."""
    m = as_numpy(mask, bool)
    h, w = m.shape
    big_h, big_w = int(shape[0]), int(shape[1])
    if (h, w) == (big_h, big_w):
        return m.copy()
    rows = np.arange(big_h) * h // big_h
    cols = np.arange(big_w) * w // big_w
    return np.asarray(m[rows[:, None], cols[None, :]])


def event_mask_from_features(features: Any, shape: Sequence[int] | None = None) -> np.ndarray:
    """Pixels where an input feature tensor (C, h, w) is non-zero in any channel, resized to ``shape``.

    This approximates the event mask when only the network input is at hand (training and validation); when the
    feature resolution is below the GT resolution, every GT pixel inside a feature pixel with events counts.
    """
    x = as_numpy(features, np.float32)
    if x.ndim == 2:
        x = x[None]
    mask = np.abs(x).sum(axis=0) > 0
    return mask if shape is None else resize_mask(mask, shape)


def valid_mask(
    gt: Any,
    *,
    events_mask: Any = None,
    crop: Crop | None = None,
    keep_zero_gt: bool = False,
) -> np.ndarray:
    """The pixels a GT frame is scored on.

    valid = finite GT (both components) and GT != (0, 0) (unless ``keep_zero_gt``) and inside ``crop`` and
    ``events_mask`` (when given; pass None for dense evaluation).

    Args:
        gt: (2, H, W) GT flow, +inf or NaN where invalid.
        events_mask: (H, W) bool mask of pixels with events in the GT interval (resized to (H, W) if needed).
        crop: ``(y0, x0, height, width)`` in GT pixels.
        keep_zero_gt: keep pixels whose GT is exactly (0, 0).

    Returns:
        (H, W) bool mask.
    """
    g = as_numpy(gt)
    _check_flow(g, "gt")
    valid = np.isfinite(g).all(axis=0)
    if not keep_zero_gt:
        valid &= (g[0] != 0) | (g[1] != 0)
    if crop is not None:
        y0, x0, ch, cw = (int(v) for v in crop)
        if ch <= 0 or cw <= 0 or y0 < 0 or x0 < 0:
            message = f"crop must be (y0, x0, height, width) with positive size, got {crop}"
            raise ConfigError(message)
        inside = np.zeros_like(valid)
        inside[y0 : y0 + ch, x0 : x0 + cw] = True
        valid &= inside
    if events_mask is not None:
        valid &= resize_mask(events_mask, valid.shape)
    return valid
