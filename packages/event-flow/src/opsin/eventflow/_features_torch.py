"""The torch twin of the feature builders: same definitions, computed on the tensor's device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from opsin.eventflow._registry import get_preprocess_info
from opsin.eventflow.errors import ConfigError

__all__ = ["events_to_tensor_torch"]


def _columns(events: np.ndarray | torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
    if isinstance(events, torch.Tensor):
        if events.ndim != 2 or events.shape[1] != 4:
            message = f"event tensors must be (N, 4) with columns x, y, p, t, got {tuple(events.shape)}"
            raise ConfigError(message)
        ev = events.to(device=device, dtype=torch.int64)
        x, y, p, t = ev.unbind(1)
        return x, y, (p > 0).long(), t
    cols = [torch.as_tensor(np.array(events[name], dtype=np.int64), device=device) for name in ("x", "y", "p", "t")]
    return cols[0], cols[1], (cols[2] > 0).long(), cols[3]


def events_to_tensor_torch(
    events: np.ndarray | torch.Tensor,
    output: torch.Tensor,
    preprocess: str,
    total_tbins_delta_t: int,
    downsampling_factor: int = 0,
    reset: bool = True,
    preprocess_kwargs: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Fills ``output`` (T, C, H, W) in place with the features of ``events``, like the NumPy builders.

    Args:
        events: an EVENT_CD array or an (N, 4) tensor of x, y, p, t.
        output: the float32 destination; its device is used for the computation.
        preprocess: a registry name (histo, diff, timesurface, multi_channel_timesurface, event_cube,
            event_cube_paper).
        total_tbins_delta_t: window length in us.
        downsampling_factor: coordinate shift.
        reset: zero ``output`` first.
        preprocess_kwargs: keyword arguments (defaults from the registry).

    Returns:
        ``output``.

    Raises:
        ConfigError: unknown preprocessing or malformed inputs.
    """
    info = get_preprocess_info(preprocess, preprocess_kwargs)
    kw = info["kwargs"]
    if reset:
        output.zero_()
    n_t, c, h, w = output.shape
    x, y, p, t = _columns(events, output.device)
    x, y = x >> downsampling_factor, y >> downsampling_factor
    keep = (t >= 0) & (x < w) & (y < h)
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    flat_out = output.view(-1)
    total = float(total_tbins_delta_t)
    k = 1.0 / (float(kw.get("max_incr_per_pixel", 1.0)) * 4.0**downsampling_factor)
    name = preprocess if preprocess != "event_cube_paper" else "event_cube"
    if name in ("histo", "diff"):
        b = torch.clamp(torch.floor(t.double() / (total / n_t)).long(), max=n_t - 1)
        if name == "histo":
            idx = ((b * c + p) * h + y) * w + x
            counts = torch.zeros(output.numel(), dtype=torch.float64, device=output.device)
            counts.index_put_((idx,), torch.ones_like(idx, dtype=torch.float64), accumulate=True)
            flat_out += (k * counts).to(output.dtype)
            output.clamp_(max=1)
        else:
            idx = (b * h + y) * w + x
            sign = torch.where(p > 0, 1.0, -1.0).to(output.dtype)
            plane = torch.zeros(n_t * h * w, dtype=torch.float64, device=output.device)
            plane.index_put_((idx,), sign.double() * k, accumulate=True)
            output[:, 0] += plane.view(n_t, h, w).to(output.dtype)
            output.clamp_(-1, 1)
        return output
    if name in ("timesurface", "multi_channel_timesurface"):
        n_bins = n_t if name == "timesurface" else n_t * (c // 2)
        dt = total / n_bins
        b = torch.clamp(torch.floor(t.double() / dt).long(), max=n_bins - 1)
        offset = t.double() - b.double() * dt
        ok = (offset >= 0) & (offset < dt)
        value = offset[ok] / dt if kw.get("normed", True) else offset[ok]
        idx = ((b[ok] * 2 + p[ok]) * h + y[ok]) * w + x[ok]
        flat_out.scatter_reduce_(0, idx, value.to(output.dtype), reduce="amax", include_self=True)
        return output
    if name == "event_cube":
        split = bool(kw.get("split_polarity", True))
        n_pol = 2 if split else 1
        n_micro = n_t * (c // n_pol)
        tau = t.double() * n_micro / total - 0.5
        left = torch.floor(tau).long()
        w_right = tau - left.double()
        chan = p if split else torch.zeros_like(p)
        sign = torch.ones_like(tau) if split else torch.where(p > 0, 1.0, -1.0).double()
        acc = torch.zeros(output.numel(), dtype=torch.float64, device=output.device)
        for bins, weight in ((left, 1.0 - w_right), (left + 1, w_right)):
            ok = (bins >= 0) & (bins < n_micro)
            idx = ((bins[ok] * n_pol + chan[ok]) * h + y[ok]) * w + x[ok]
            acc.index_put_((idx,), k * weight[ok] * sign[ok], accumulate=True)
        flat_out += acc.to(output.dtype)
        output.clamp_(0.0 if split else -1.0, 1.0)
        return output
    message = f"preprocessing {preprocess!r} has no torch twin"
    raise ConfigError(message)
