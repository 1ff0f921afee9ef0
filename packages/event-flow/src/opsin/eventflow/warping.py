"""Warping of feature tensors by forward optical flow, and the multi-scale input pyramid.

Conventions: a flow is a (N, 2, h, w) tensor, u (to the right) first and v (downwards) second, in pixels per
``delta_t`` at the resolution of the tensor that holds it, and *forward*: it moves the content of bin t onto bin t+1,
so ``X_{t+1}(x) ~ X_t(x - F(x))``. Pixel centres sit at integer coordinates, hence every resampling here uses
``align_corners=True``; outside the image the sampled value is zero.

Every warp accepts ``flow_is_normalized``: ``False`` (pixels, normalised here by :func:`normalize_flow`) or ``True``
(already in ``grid_sample`` units, used as is). The losses normalise once and pass ``True`` afterwards.

Micro-binned features hold M micro-bins of P channels each, channel ``P * m + p``; micro-bin m of a bin is warped onto
micro-bin m* with ``S_m(x) = X_m(x + F(x) * (m - m*) / M)``.

:func:`warp_events` and :func:`event_image` (numpy, used by the metrics) live in a private module and are re-exported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from torch import Tensor

from opsin.eventflow._event_warp import event_image, warp_events
from opsin.eventflow.errors import ConfigError

__all__ = [
    "Pyramid",
    "Warping",
    "event_image",
    "make_grid2d",
    "normalize_flow",
    "warp_backward_using_forward_flow",
    "warp_events",
    "warp_forward_using_forward_flow",
    "warp_to_micro_tbin",
    "warp_to_tbin",
]

_NORMALIZED_LIMIT = 2.0


def normalize_flow(flow: Tensor) -> Tensor:
    """Pixel flow (N, 2, h, w) -> ``grid_sample`` units: u * 2 / (w - 1), v * 2 / (h - 1), clamped to [-2, 2].

    The clamp (a displacement larger than the whole image) has zero gradient beyond the limit. A dimension of size 1
    has no extent; its component is divided by 1 instead of 0.
    """
    _check_flow(flow)
    h, w = flow.shape[-2:]
    scale = flow.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)]).view(1, 2, 1, 1)
    return (flow * scale).clamp(-_NORMALIZED_LIMIT, _NORMALIZED_LIMIT)


def make_grid2d(
    height: int, width: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """Identity sampling grid (1, height, width, 2) of (x, y), each spanning linspace(-1, 1)."""
    dtype = dtype or torch.get_default_dtype()
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1).unsqueeze(0)


def _check_flow(flow: Tensor) -> None:
    if flow.dim() != 4 or flow.shape[1] != 2:
        message = f"a flow must be shaped (N, 2, h, w), got {tuple(flow.shape)}"
        raise ConfigError(message)


def _check_pair(features: Tensor, flow: Tensor) -> None:
    _check_flow(flow)
    if features.dim() != 4:
        message = f"features must be shaped (N, C, h, w), got {tuple(features.shape)}"
        raise ConfigError(message)
    if features.shape[0] != flow.shape[0] or features.shape[-2:] != flow.shape[-2:]:
        message = f"features {tuple(features.shape)} and flow {tuple(flow.shape)} differ in N, h or w"
        raise ConfigError(message)


def _as_normalized(flow: Tensor, flow_is_normalized: bool) -> Tensor:
    return flow if flow_is_normalized else normalize_flow(flow)


def _sample(features: Tensor, grid: Tensor, mode: str) -> Tensor:
    return F.grid_sample(features, grid.to(features.dtype), mode=mode, padding_mode="zeros", align_corners=True)


def _grid_for(features: Tensor, grid: Tensor | None) -> Tensor:
    h, w = features.shape[-2:]
    if grid is None or grid.shape[1:3] != (h, w):
        return make_grid2d(h, w, device=features.device, dtype=features.dtype)
    return grid


def warp_forward_using_forward_flow(
    features: Tensor,
    flow: Tensor,
    flow_is_normalized: bool = False,
    mode: str = "bilinear",
    grid: Tensor | None = None,
) -> Tensor:
    """W(x) = X(x - F(x)): moves the content of ``features`` (N, C, h, w) forward along ``flow`` (N, 2, h, w).

    Args:
        features: the tensor to warp.
        flow: forward flow, in pixels unless ``flow_is_normalized``.
        flow_is_normalized: ``True`` when ``flow`` is already in ``grid_sample`` units.
        mode: ``grid_sample`` interpolation mode.
        grid: an identity grid of the right size to reuse (see :class:`Warping`); built when absent or mis-sized.
    """
    _check_pair(features, flow)
    flow_hat = _as_normalized(flow, flow_is_normalized)
    base = _grid_for(features, grid)
    return _sample(features, base - flow_hat.permute(0, 2, 3, 1), mode)


def warp_backward_using_forward_flow(
    features: Tensor,
    flow: Tensor,
    flow_is_normalized: bool = False,
    mode: str = "bilinear",
    grid: Tensor | None = None,
) -> Tensor:
    """X(x + F(x)): brings the content of the next bin back onto the current one (arguments as the forward warp)."""
    _check_pair(features, flow)
    flow_hat = _as_normalized(flow, flow_is_normalized)
    base = _grid_for(features, grid)
    return _sample(features, base + flow_hat.permute(0, 2, 3, 1), mode)


def warp_to_tbin(
    features: Tensor,
    flow: Tensor,
    tbin: int,
    flow_is_normalized: bool = False,
    mode: str = "bilinear",
    grid: Tensor | None = None,
) -> Tensor:
    """Aligns every bin of a sequence on bin ``tbin`` under constant motion: bin i is sampled at x - F(x) * (tbin - i).

    Args:
        features: (T, B, C, h, w) sequence.
        flow: (B, 2, h, w) forward flow of one bin, in pixels unless ``flow_is_normalized``.
        tbin: the target bin; any integer (bins after it are pulled backwards).
        flow_is_normalized: ``True`` when ``flow`` is already in ``grid_sample`` units.
        mode: ``grid_sample`` interpolation mode.
        grid: an identity grid to reuse.

    Returns:
        The aligned (T, B, C, h, w) sequence.
    """
    if features.dim() != 5:
        message = f"warp_to_tbin expects a (T, B, C, h, w) sequence, got {tuple(features.shape)}"
        raise ConfigError(message)
    t, b, c, h, w = features.shape
    _check_pair(features[0], flow)
    flow_hat = _as_normalized(flow, flow_is_normalized).permute(0, 2, 3, 1)
    steps = (tbin - torch.arange(t, device=flow.device, dtype=flow_hat.dtype)).view(t, 1, 1, 1, 1)
    base = _grid_for(features[0], grid)
    grids = (base.unsqueeze(0) - steps * flow_hat.unsqueeze(0)).reshape(t * b, h, w, 2)
    return _sample(features.reshape(t * b, c, h, w), grids, mode).view(t, b, c, h, w)


def warp_to_micro_tbin(
    features: Tensor,
    flow: Tensor,
    micro_tbin: int = 0,
    micro_bins: int = 3,
    flow_is_normalized: bool = False,
    mode: str = "bilinear",
    grid: Tensor | None = None,
) -> Tensor:
    """Warps every micro-bin of each bin onto micro-bin ``micro_tbin``: S_m(x) = X_m(x + F(x) * (m - m*) / M).

    Args:
        features: (N, M * P, h, w) or (T, B, M * P, h, w) micro-binned features, channel ``P * m + p``.
        flow: (N, 2, h, w) flow of each bin (N = T * B for a sequence, row t * B + b), pixels unless normalised.
        micro_tbin: the target micro-bin m*, in [0, M).
        micro_bins: M, the number of micro-bins per bin (the channel count must be a multiple of it).
        flow_is_normalized: ``True`` when ``flow`` is already in ``grid_sample`` units.
        mode: ``grid_sample`` interpolation mode.
        grid: an identity grid to reuse.

    Returns:
        The sharpened features, same shape and channel layout as ``features``.

    Raises:
        ConfigError: M < 1, m* outside [0, M), channels not a multiple of M, or mismatched shapes.
    """
    shape = features.shape
    if features.dim() == 5:
        features = features.reshape(shape[0] * shape[1], *shape[2:])
    n, c, h, w = features.shape
    if micro_bins < 1 or c % micro_bins:
        message = f"{c} channels cannot be split into {micro_bins} micro-bins"
        raise ConfigError(message)
    if not 0 <= micro_tbin < micro_bins:
        message = f"micro_tbin={micro_tbin} is outside [0, {micro_bins})"
        raise ConfigError(message)
    _check_pair(features, flow)
    per_bin = c // micro_bins
    flow_hat = _as_normalized(flow, flow_is_normalized).permute(0, 2, 3, 1)
    offsets = torch.arange(micro_bins, device=flow.device, dtype=flow_hat.dtype) - micro_tbin
    factors = (offsets / micro_bins).view(micro_bins, 1, 1, 1, 1)
    base = _grid_for(features, grid)
    grids = (base.unsqueeze(0) + factors * flow_hat.unsqueeze(0)).reshape(micro_bins * n, h, w, 2)
    # Micro-bins go to the batch axis (m-major) so that one grid_sample call warps all of them.
    stacked = features.view(n, micro_bins, per_bin, h, w).transpose(0, 1).reshape(micro_bins * n, per_bin, h, w)
    sharp = _sample(stacked, grids, mode).view(micro_bins, n, per_bin, h, w).transpose(0, 1)
    return sharp.reshape(shape)


class Warping:
    """Warps with a cached identity grid; the cache is keyed by (h, w, device, dtype) and rebuilt when any changes.

    It holds no parameters (a plain object, not an ``nn.Module``), so a network keeps a list of them outside
    TorchScript and the loss may share them.

    Args:
        mode: ``grid_sample`` interpolation mode.
    """

    def __init__(self, mode: str = "bilinear") -> None:
        self.mode = mode
        self._grid: Tensor | None = None
        self._key: tuple[int, int, torch.device, torch.dtype] | None = None

    def grid(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The (1, height, width, 2) identity grid, rebuilt only when the size, device or dtype changes."""
        key = (height, width, torch.device(device), dtype)
        if self._grid is None or key != self._key:
            self._grid = make_grid2d(height, width, device=device, dtype=dtype)
            self._key = key
        return self._grid

    def _grid_like(self, features: Tensor) -> Tensor:
        h, w = features.shape[-2:]
        return self.grid(h, w, features.device, features.dtype)

    def warp_forward(self, features: Tensor, flow: Tensor, flow_is_normalized: bool = False) -> Tensor:
        """X(x - F(x)) of (N, C, h, w) ``features``."""
        grid = self._grid_like(features)
        return warp_forward_using_forward_flow(features, flow, flow_is_normalized, self.mode, grid)

    def warp_backward(self, features: Tensor, flow: Tensor, flow_is_normalized: bool = False) -> Tensor:
        """X(x + F(x)) of (N, C, h, w) ``features``."""
        grid = self._grid_like(features)
        return warp_backward_using_forward_flow(features, flow, flow_is_normalized, self.mode, grid)

    def warp_sequence_by_one_time_bin(self, features: Tensor, flow: Tensor, flow_is_normalized: bool = False) -> Tensor:
        """Moves every bin of a (T, B, C, h, w) sequence forward by its own flow (T * B, 2, h, w), row t * B + b.

        Bin t of the result is the prediction of bin t + 1: X_t(x - F_t(x)).
        """
        if features.dim() != 5:
            message = f"expected a (T, B, C, h, w) sequence, got {tuple(features.shape)}"
            raise ConfigError(message)
        t, b, c, h, w = features.shape
        warped = self.warp_forward(features.reshape(t * b, c, h, w), flow, flow_is_normalized)
        return warped.view(t, b, c, h, w)

    def sharpen_micro_tbin(
        self,
        features: Tensor,
        flow: Tensor,
        micro_tbin: int = 0,
        micro_bins: int = 3,
        flow_is_normalized: bool = False,
    ) -> Tensor:
        """Warps the micro-bins of each bin onto ``micro_tbin`` (see :func:`warp_to_micro_tbin`)."""
        grid = self._grid_like(features)
        return warp_to_micro_tbin(features, flow, micro_tbin, micro_bins, flow_is_normalized, self.mode, grid)

    def __repr__(self) -> str:
        return f"Warping(mode={self.mode!r})"


class Pyramid:
    """Resizes inputs to the L levels of a flow network, coarsest first.

    Level i (0 = coarsest) is the input scaled by 2^-(L - 1 - i); the finest level is the input itself. A plain object
    without parameters, kept outside TorchScript.

    Args:
        num_levels: L >= 1.
        mode: ``torch.nn.functional.interpolate`` mode.
        align_corners: passed to interpolate for the (bi/tri)linear and bicubic modes, ignored otherwise.
    """

    _CORNER_MODES = frozenset({"linear", "bilinear", "bicubic", "trilinear"})

    def __init__(self, num_levels: int, mode: str = "bilinear", align_corners: bool = True) -> None:
        if num_levels < 1:
            message = f"a pyramid needs at least one level, got {num_levels}"
            raise ConfigError(message)
        self.num_levels = num_levels
        self.mode = mode
        self.align_corners = align_corners

    def level_size(self, height: int, width: int, level: int) -> tuple[int, int]:
        """(h, w) of ``level`` for an input of (height, width)."""
        factor = 2 ** (self.num_levels - 1 - self._check_level(level))
        return height // factor, width // factor

    def _check_level(self, level: int) -> int:
        if not -self.num_levels <= level < self.num_levels:
            message = f"level {level} is outside a pyramid of {self.num_levels} levels"
            raise ConfigError(message)
        return level % self.num_levels

    def compute_level(self, inputs: Tensor, level: int) -> Tensor:
        """``inputs`` (..., C, H, W) (4-D or 5-D) resized to ``level``; the finest level returns ``inputs`` itself."""
        level = self._check_level(level)
        if level == self.num_levels - 1:
            return inputs
        lead, (h, w) = inputs.shape[:-2], inputs.shape[-2:]
        size = self.level_size(h, w, level)
        if min(size) < 1:
            message = f"an input of {h}x{w} is too small for {self.num_levels} pyramid levels"
            raise ConfigError(message)
        flat = inputs.reshape(-1, inputs.shape[-3], h, w)
        corners = self.align_corners if self.mode in self._CORNER_MODES else None
        resized = F.interpolate(flat, size=size, mode=self.mode, align_corners=corners)
        return resized.view(*lead, *size)

    def compute_all_levels(self, inputs: Tensor) -> list[Tensor]:
        """All L levels of ``inputs``, coarsest first."""
        return [self.compute_level(inputs, level) for level in range(self.num_levels)]

    def __repr__(self) -> str:
        return f"Pyramid({self.num_levels}, mode={self.mode!r}, align_corners={self.align_corners})"
