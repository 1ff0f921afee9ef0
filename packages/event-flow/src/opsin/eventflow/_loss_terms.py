"""The self-supervised loss terms of one pyramid level, and the level context they share.

A term is a function ``term(level, masked) -> scalar``: ``level`` is a :class:`LossLevel` (inputs, normalised flow,
cached warps, event mask, valid samples), ``masked`` says whether the term is restricted to pixels with events. Every
term averages over **all** elements of its residual map (masked elements count as zeros), restricted to the valid
samples when the caller passes ``valid``.
"""

from __future__ import annotations

from functools import cached_property

from torch import Tensor

from opsin.eventflow._flow_penalties import SecondOrderLoss, SmoothnessLoss, charbonnier
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.warping import Warping, normalize_flow

__all__ = [
    "LossLevel",
    "bw_deblur_term",
    "data_term",
    "event_mask",
    "l1_term",
    "smoothness2_term",
    "smoothness_term",
    "time_consistency_term",
]

# Steps of the multi-step prediction and the weight lost per step.
_MAX_PREDICTION_STEPS = 3
_STEP_DECAY = 0.25

_SMOOTHNESS = SmoothnessLoss()
_SECOND_ORDER = SecondOrderLoss()


def event_mask(inputs: Tensor) -> Tensor:
    """1 where any channel is non-zero (negative signed values included), else 0; (..., 1, h, w), detached.

    Args:
        inputs: features (..., C, h, w).
    """
    return (inputs.detach().abs().amax(dim=-3, keepdim=True) > 0).to(inputs.dtype)


class LossLevel:
    """One pyramid level as the loss terms see it.

    Args:
        flow: (T * B, 2, h, w) flow of the level in pixels (row t * B + b); it is normalised once here.
        inputs: (T, B, C, h, w) features at the level's resolution.
        warping: the level's warping object (grid cache).
        valid: optional (B,) bool, False for padding samples.
        micro_bins: M, micro-bins per bin (bw_deblur).
        channels_per_micro_bin: P, or None for C // M.
    """

    def __init__(
        self,
        flow: Tensor,
        inputs: Tensor,
        warping: Warping,
        valid: Tensor | None = None,
        micro_bins: int = 1,
        channels_per_micro_bin: int | None = None,
    ) -> None:
        if inputs.dim() != 5:
            message = f"interpolated inputs must be (T, B, C, h, w), got {tuple(inputs.shape)}"
            raise ConfigError(message)
        t, b, _, h, w = inputs.shape
        if tuple(flow.shape) != (t * b, 2, h, w):
            message = (
                f"flow {tuple(flow.shape)} does not match inputs {tuple(inputs.shape)} (expected {(t * b, 2, h, w)})"
            )
            raise ConfigError(message)
        self.inputs = inputs
        self.num_tbins = t
        self.batch_size = b
        self.flow_hat = normalize_flow(flow)
        self.warping = warping
        self.valid = valid
        self.micro_bins = micro_bins
        self.channels_per_micro_bin = channels_per_micro_bin
        self.skipped: dict[str, str] = {}

    @property
    def flow_sequence(self) -> Tensor:
        """The normalised flow viewed as (T, B, 2, h, w)."""
        return self.flow_hat.view(self.num_tbins, self.batch_size, *self.flow_hat.shape[1:])

    @cached_property
    def warped(self) -> Tensor:
        """(T, B, C, h, w): bin t moved by its own flow, the prediction of bin t + 1."""
        return self.warping.warp_sequence_by_one_time_bin(self.inputs, self.flow_hat, flow_is_normalized=True)

    @cached_property
    def events(self) -> Tensor:
        """(T, B, 1, h, w) event mask of the inputs."""
        return event_mask(self.inputs)

    def per_sample(self, values: Tensor) -> Tensor:
        """Views (T' * B, ...) values as (T', B, ...)."""
        return values.view(-1, self.batch_size, *values.shape[1:])

    def mean(self, values: Tensor) -> Tensor:
        """Mean of (T', B, ...) values over all elements of the valid samples (zero if none is valid)."""
        if self.valid is None:
            return values.mean()
        kept = values[:, self.valid]
        if kept.numel() == 0:
            return values.sum() * 0
        return kept.mean()

    def skip(self, name: str, reason: str) -> Tensor:
        """Records why ``name`` cannot run here and returns a zero that keeps the graph connected."""
        self.skipped[name] = reason
        return self.flow_hat.sum() * 0


def data_term(level: LossLevel, masked: bool) -> Tensor:
    """Photometric warp: rho(W_t - X_{t+1}) for t = 0..T-2, over all channels."""
    if level.num_tbins < 2:
        return level.skip("data", "needs at least 2 time bins per sequence")
    residual = level.warped[:-1] - level.inputs[1:]
    penalty = charbonnier(residual)
    if masked:
        penalty = penalty * level.events[1:]
    return level.mean(penalty)


def time_consistency_term(level: LossLevel, masked: bool) -> Tensor:
    """Multi-step prediction: W^(s)_k(x) = W^(s-1)_k(x - F_{k+s}(x)) compared with X_{k+s+1}, weight 1 - s/4.

    The flow is normalised once (by the level); every later warp uses it as is.
    """
    t, b = level.num_tbins, level.batch_size
    steps = min(_MAX_PREDICTION_STEPS, t - 2)
    if steps < 1:
        return level.skip("time_consistency", "needs at least 3 time bins per sequence")
    flows = level.flow_sequence
    previous = level.warped
    total = level.flow_hat.new_zeros(())
    for s in range(1, steps + 1):
        count = t - s
        source = previous[:count]
        _, _, c, h, w = source.shape
        moved = level.warping.warp_forward(
            source.reshape(count * b, c, h, w), flows[s : s + count].reshape(count * b, 2, h, w), True
        ).view(count, b, c, h, w)
        penalty = charbonnier(moved[: t - 1 - s] - level.inputs[s + 1 :])
        if masked:
            penalty = penalty * level.events[s + 1 :]
        total = total + (1 - _STEP_DECAY * s) * level.mean(penalty)
        previous = moved
    return total


def bw_deblur_term(level: LossLevel, masked: bool) -> Tensor:
    """Sharpening inside a bin: micro-bins warped onto the first one, rho(S_0 - mean of S_1..S_{M-1})."""
    t, b, c, h, w = level.inputs.shape
    m = level.micro_bins
    p = level.channels_per_micro_bin or (c // m if m else 0)
    if m < 2:
        message = f"bw_deblur needs at least 2 micro-bins per bin, got {m}; set its weight to 0"
        raise ConfigError(message)
    if m * p != c:
        message = f"bw_deblur: {c} input channels are not {m} micro-bins x {p} channels"
        raise ConfigError(message)
    sharp = level.warping.sharpen_micro_tbin(level.inputs, level.flow_hat, 0, m, flow_is_normalized=True)
    sharp = sharp.view(t, b, m, p, h, w)
    penalty = charbonnier(sharp[:, :, 0] - sharp[:, :, 1:].mean(dim=2))
    if masked:
        penalty = penalty * level.events
    return level.mean(penalty)


def _flat_events(level: LossLevel) -> Tensor:
    return level.events.reshape(-1, 1, *level.events.shape[-2:])


def smoothness_term(level: LossLevel, masked: bool) -> Tensor:
    """First-order smoothness of the normalised flow (u term plus v term)."""
    penalties = _SMOOTHNESS.penalties(level.flow_hat, _flat_events(level) if masked else None)
    return 2 * level.mean(level.per_sample(penalties))


def smoothness2_term(level: LossLevel, masked: bool) -> Tensor:
    """Second-order smoothness of the normalised flow (u term plus v term)."""
    penalties = _SECOND_ORDER.penalties(level.flow_hat, _flat_events(level) if masked else None)
    return 2 * level.mean(level.per_sample(penalties))


def l1_term(level: LossLevel, masked: bool) -> Tensor:
    """Mean squared normalised magnitude: sum over pixels of u^2 + v^2 divided by N * h * w."""
    magnitude = (level.flow_hat**2).sum(dim=1, keepdim=True)
    if masked:
        magnitude = magnitude * _flat_events(level)
    return level.mean(level.per_sample(magnitude))
