"""Flow warp loss (FWL): how much a flow sharpens the image of the events it explains, without ground truth.

FWL = var(IWE) / var(I): I is the image of the window's events at their own pixels, IWE the image of the same events
moved to a reference time along the flow, both splatted bilinearly with one count per event. A flow that aligns the
events of a moving edge concentrates them and raises the variance: FWL > 1 is better than no flow (FWL = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# The numpy event warp is imported from its private module so that the metrics do not import torch.
from opsin.eventflow._association import as_numpy, upsample_flow
from opsin.eventflow._event_warp import event_image, warp_events
from opsin.eventflow.errors import ConfigError

__all__ = ["flow_warp_loss", "sequence_flow_warp_loss"]


def flow_warp_loss(
    events: np.ndarray,
    flow: Any,
    delta_t: float,
    t_ref: float | None = None,
    sensor_shape: Sequence[int] | None = None,
) -> float:
    """FWL of one window of events.

    Args:
        events: the window's events (fields x, y, t).
        flow: (2, h, w) forward flow in px per ``delta_t`` (numpy or torch); resized to ``sensor_shape`` with
            rescaled components when its resolution differs.
        delta_t: the interval the flow covers (us).
        t_ref: the time the events are moved to; by default the earliest event time.
        sensor_shape: the events' (height, width); by default the flow's resolution.

    Returns:
        var(IWE) / var(I), or NaN when the window has no event or a constant event image.

    Raises:
        ConfigError: a non-positive ``delta_t`` or a flow that is not (2, h, w).
    """
    f = as_numpy(flow)
    if f.ndim != 3 or f.shape[0] != 2:
        message = f"flow must have shape (2, H, W), got {tuple(f.shape)}"
        raise ConfigError(message)
    height, width = (int(sensor_shape[0]), int(sensor_shape[1])) if sensor_shape is not None else f.shape[1:]
    if events.size == 0:
        return float("nan")
    f = upsample_flow(f, (height, width))
    ref = float(events["t"].min()) if t_ref is None else float(t_ref)
    xs, ys = warp_events(events, f, ref, delta_t)
    warped = event_image(xs, ys, None, height, width)
    still = event_image(events["x"].astype(np.float64), events["y"].astype(np.float64), None, height, width)
    denominator = float(still.var())
    return float(warped.var()) / denominator if denominator > 0 else float("nan")


def sequence_flow_warp_loss(
    events: np.ndarray,
    flows: Any,
    starts: Any,
    delta_t: int,
    sensor_shape: Sequence[int] | None = None,
) -> float:
    """Mean FWL over the windows ``[starts[i], starts[i] + delta_t)`` of a prediction sequence.

    Each window's events are moved to the window start by its own flow; windows without events (NaN) are skipped.

    Args:
        events: the recording's events (fields x, y, t), sorted by t.
        flows: (N, 2, h, w) predictions in px per ``delta_t``.
        starts: (N,) window starts (us).
        delta_t: window length (us).
        sensor_shape: the events' (height, width); by default the flows' resolution.

    Returns:
        The mean FWL, NaN when no window had events.
    """
    f = as_numpy(flows)
    s = as_numpy(starts, np.int64).reshape(-1)
    if f.ndim != 4 or f.shape[0] != s.shape[0]:
        message = f"flows must be (N, 2, h, w) with N = len(starts), got {tuple(f.shape)} and {s.shape[0]} starts"
        raise ConfigError(message)
    bounds = np.searchsorted(events["t"], np.stack([s, s + delta_t]), side="left")
    values = [
        flow_warp_loss(events[lo:hi], f[i], delta_t, float(s[i]), sensor_shape)
        for i, (lo, hi) in enumerate(bounds.T.tolist())
    ]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
