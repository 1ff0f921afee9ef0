"""Event-level warping and bilinear splatting (numpy), used by the metrics to build images of warped events."""

from __future__ import annotations

from typing import Any

import numpy as np

from opsin.eventflow._association import bilinear_lookup
from opsin.eventflow.errors import ConfigError

__all__ = ["event_image", "warp_events"]


def _as_numpy_flow(flow: Any) -> np.ndarray:
    array = flow.detach().cpu().numpy() if hasattr(flow, "detach") else np.asarray(flow)
    if array.ndim != 3 or array.shape[0] != 2:
        message = f"warp_events expects a (2, H, W) flow, got shape {array.shape}"
        raise ConfigError(message)
    return array.astype(np.float64, copy=False)


def warp_events(events: np.ndarray, flow: Any, t_ref: float, delta_t: float) -> tuple[np.ndarray, np.ndarray]:
    """Moves events along a dense flow to time ``t_ref``: x' = x + f(x) * (t_ref - t) / delta_t.

    Args:
        events: array with fields ``x``, ``y`` and ``t`` (e.g. ``EVENT_CD``), t in the unit of ``t_ref``.
        flow: (2, H, W) forward flow (numpy or torch), u first, in pixels per ``delta_t``; it is sampled bilinearly at
            each event's position (clamped to the image).
        t_ref: the reference time the events are moved to.
        delta_t: the interval the flow covers, > 0.

    Returns:
        (xs, ys): float64 positions of the warped events.

    Raises:
        ConfigError: a non-positive ``delta_t`` or a flow that is not (2, H, W).
    """
    if not delta_t > 0:
        message = f"delta_t must be > 0, got {delta_t}"
        raise ConfigError(message)
    field = _as_numpy_flow(flow)
    xs = np.asarray(events["x"], dtype=np.float64)
    ys = np.asarray(events["y"], dtype=np.float64)
    scale = (float(t_ref) - np.asarray(events["t"], dtype=np.float64)) / float(delta_t)
    u, v = bilinear_lookup(field, xs, ys)
    return xs + u * scale, ys + v * scale


def event_image(xs: np.ndarray, ys: np.ndarray, weights: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """Splats weighted points bilinearly into a (height, width) float64 image.

    Each point spreads its weight over its four neighbouring pixels; neighbours outside the image are dropped, so a
    point fully inside conserves its weight.

    Args:
        xs: x positions (pixel centres at integers).
        ys: y positions.
        weights: one weight per point, or ``None`` for 1 each.
        height: image height.
        width: image width.
    """
    xs = np.asarray(xs, dtype=np.float64).ravel()
    ys = np.asarray(ys, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        message = f"xs and ys differ in length: {xs.size} and {ys.size}"
        raise ConfigError(message)
    values = np.ones_like(xs) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if values.shape != xs.shape:
        message = f"{values.size} weights for {xs.size} points"
        raise ConfigError(message)
    finite = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(values)
    xs, ys, values = xs[finite], ys[finite], values[finite]
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    wx = xs - x0
    wy = ys - y0
    image = np.zeros(height * width, dtype=np.float64)
    for dx, dy, share in (
        (0, 0, (1 - wx) * (1 - wy)),
        (1, 0, wx * (1 - wy)),
        (0, 1, (1 - wx) * wy),
        (1, 1, wx * wy),
    ):
        px, py = x0 + dx, y0 + dy
        inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        index = py[inside] * width + px[inside]
        image += np.bincount(index, weights=(values * share)[inside], minlength=height * width)
    return image.reshape(height, width)
