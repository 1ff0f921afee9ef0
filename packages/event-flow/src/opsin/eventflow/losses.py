"""Self-supervised multi-scale flow loss: ``FlowLoss`` and its six terms.

Terms (``LOSS_NAMES``), all computed on the normalised flow F^ = normalize_flow(F) of each pyramid level:

* ``data``: rho(X_t(x - F_t(x)) - X_{t+1}(x)), bins 0..T-2 (T = 1: contributes 0, logged once).
* ``time_consistency``: the warped bin is moved again by the flows of the next bins, up to 3 steps, and compared with
  the bin it should predict; step s weighs 1 - s/4; event-masked by default (T < 3: contributes 0, logged once).
* ``bw_deblur``: inside each bin, the micro-bins warped onto the first one must agree with it (needs M >= 2).
* ``smoothness`` / ``smoothness2``: first / second order Charbonnier smoothness (constant / affine flows are free).
* ``l1``: mean squared normalised magnitude (the historical name is kept).

rho(x) = (x^2 + 1e-6)^0.45. Every term is the mean over all elements of rho * mask (masked elements stay in the
denominator), restricted to the valid samples when ``valid`` is given. Level i of L (0 = coarsest) weighs
2^-(L-1-i); a term's value is its weight times the sum over levels. All of it runs in float32 with autocast off.

Micro-bins (bw_deblur): the layout (M micro-bins of P channels, channel P * m + p) is not visible in the tensors.
``FlowLoss`` reads it from the keyword-only ``micro_bins`` / ``channels_per_micro_bin`` arguments, else from the
preprocessing registry when ``preprocess`` (and ``preprocess_kwargs``) are given, else assumes the ``event_cube``
default (M = 3, P = C / 3). A model whose preprocessing has no micro-bins must set the bw_deblur weight to 0.

New terms are added with :func:`register_loss`; their names then become valid ``flow_weights`` keys.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from opsin.core import get_logger
from opsin.eventflow._flow_penalties import (
    SecondOrderLoss,
    SmoothnessLoss,
    charbonnier,
    charbonnier_loss,
    extreme_displacement_loss,
    second_order_validity,
)
from opsin.eventflow._loss_terms import (
    LossLevel,
    bw_deblur_term,
    data_term,
    event_mask,
    l1_term,
    smoothness2_term,
    smoothness_term,
    time_consistency_term,
)
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.warping import Warping

__all__ = [
    "LOSS_NAMES",
    "LOSS_WEIGHTS",
    "FlowLoss",
    "LossLevel",
    "LossTerm",
    "SecondOrderLoss",
    "SmoothnessLoss",
    "charbonnier",
    "charbonnier_loss",
    "event_mask",
    "extreme_displacement_loss",
    "register_loss",
    "registered_losses",
    "second_order_validity",
    "unregister_loss",
]

_log = get_logger(__name__)

LOSS_NAMES: tuple[str, ...] = ("data", "smoothness", "smoothness2", "l1", "time_consistency", "bw_deblur")
LOSS_WEIGHTS: dict[str, float] = {
    "data": 1,
    "smoothness": 0.4,
    "smoothness2": 0.6,
    "l1": 0.3,
    "time_consistency": 1,
    "bw_deblur": 1,
}

LossTerm = Callable[[LossLevel, bool], Tensor]
"""A loss term: ``term(level, masked) -> scalar`` for one pyramid level (see :class:`LossLevel`)."""

_TERMS: dict[str, LossTerm] = {
    "data": data_term,
    "smoothness": smoothness_term,
    "smoothness2": smoothness2_term,
    "l1": l1_term,
    "time_consistency": time_consistency_term,
    "bw_deblur": bw_deblur_term,
}

_AUTOCAST_DEVICES = frozenset({"cpu", "cuda", "xpu", "mps", "hpu"})


def register_loss(name: str, fn: LossTerm, overwrite: bool = False) -> None:
    """Adds a loss term usable as a ``flow_weights`` key of :class:`FlowLoss`.

    Args:
        name: the key.
        fn: ``fn(level, masked) -> scalar`` evaluated on each pyramid level; ``level`` offers the inputs, the
            normalised flow, cached warps, the event mask and ``level.mean`` (the valid-sample mean).
        overwrite: replace an existing extra term of that name.

    Raises:
        ConfigError: the name is a built-in term, or already registered and ``overwrite`` is false.
    """
    if name in LOSS_NAMES:
        message = f"{name!r} is a built-in loss and cannot be replaced"
        raise ConfigError(message)
    if name in _TERMS and not overwrite:
        message = f"loss {name!r} is already registered; pass overwrite=True to replace it"
        raise ConfigError(message)
    _TERMS[name] = fn


def unregister_loss(name: str) -> None:
    """Removes an extra loss term added by :func:`register_loss` (built-in terms stay)."""
    if name in LOSS_NAMES:
        message = f"{name!r} is a built-in loss and cannot be removed"
        raise ConfigError(message)
    _TERMS.pop(name, None)


def registered_losses() -> tuple[str, ...]:
    """All valid ``flow_weights`` keys: the built-in terms then the registered extras."""
    return tuple(_TERMS)


def _checked_weights(flow_weights: Mapping[str, float] | None) -> dict[str, float]:
    weights = dict(LOSS_WEIGHTS if flow_weights is None else flow_weights)
    unknown = sorted(set(weights) - set(_TERMS))
    if unknown:
        message = f"unknown loss weights {unknown}; choices: {list(_TERMS)}"
        raise ConfigError(message)
    checked = {}
    for name, value in weights.items():
        number = float(value)
        if not math.isfinite(number) or number < 0:
            message = f"loss weight {name}={value!r} must be a finite number >= 0"
            raise ConfigError(message)
        checked[name] = number
    return checked


def _checked_mask(smoothness_mask: bool | Iterable[str] | None) -> frozenset[str]:
    if smoothness_mask is True:
        return frozenset(_TERMS)
    if smoothness_mask is None or smoothness_mask is False:
        return frozenset()
    names = frozenset([smoothness_mask] if isinstance(smoothness_mask, str) else smoothness_mask)
    unknown = sorted(names - set(_TERMS))
    if unknown:
        message = f"smoothness_mask names unknown losses {unknown}; choices: {list(_TERMS)}"
        raise ConfigError(message)
    return names


def _micro_layout(
    micro_bins: int | None,
    channels_per_micro_bin: int | None,
    preprocess: str | None,
    preprocess_kwargs: Mapping[str, Any] | None,
) -> tuple[int, int | None]:
    layout_m, layout_p = 3, None  # the event_cube default: P follows from the channel count
    if preprocess is not None:
        from opsin.eventflow.preprocessing import get_preprocess_info

        info = get_preprocess_info(preprocess, preprocess_kwargs)
        layout_m, layout_p = int(info["micro_bins"]), int(info["channels_per_micro_bin"])
    if micro_bins is not None:
        layout_m = int(micro_bins)
        layout_p = None
    if channels_per_micro_bin is not None:
        layout_p = int(channels_per_micro_bin)
    if layout_m < 1 or (layout_p is not None and layout_p < 1):
        message = f"micro_bins={layout_m} and channels_per_micro_bin={layout_p} must be >= 1"
        raise ConfigError(message)
    return layout_m, layout_p


class FlowLoss(nn.Module):
    """Weighted sum over pyramid levels of the self-supervised loss terms.

    Args:
        flow_weights: loss name -> weight (>= 0); missing names weigh 0 and are not computed. ``None`` means
            :data:`LOSS_WEIGHTS`.
        warping_head: one :class:`Warping` per level (coarsest first), shared with the network; built when absent.
        smoothness_mask: names of the terms restricted to pixels with events, ``True`` for all, ``None`` for none.
        micro_bins: M, micro-bins per bin for bw_deblur (keyword only).
        channels_per_micro_bin: P, channels per micro-bin (keyword only; default C / M).
        preprocess: preprocessing name to read M and P from (keyword only).
        preprocess_kwargs: its keyword arguments (``event_cube`` with ``split_polarity=False`` has P = 1).

    Raises:
        ConfigError: unknown names, negative weights, or bw_deblur active with fewer than 2 micro-bins.
    """

    def __init__(
        self,
        flow_weights: Mapping[str, float] | None = None,
        warping_head: Sequence[Warping] | None = None,
        smoothness_mask: bool | Iterable[str] | None = ("time_consistency",),
        *,
        micro_bins: int | None = None,
        channels_per_micro_bin: int | None = None,
        preprocess: str | None = None,
        preprocess_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.flow_weights = _checked_weights(flow_weights)
        self.masked = _checked_mask(smoothness_mask)
        self.micro_bins, self.channels_per_micro_bin = _micro_layout(
            micro_bins, channels_per_micro_bin, preprocess, preprocess_kwargs
        )
        if self.flow_weights.get("bw_deblur", 0) > 0 and self.micro_bins < 2:
            message = (
                f"bw_deblur needs features with at least 2 micro-bins per bin, got {self.micro_bins}"
                f"{f' ({preprocess})' if preprocess else ''}; set its weight to 0"
            )
            raise ConfigError(message)
        self.warping_head = list(warping_head) if warping_head is not None else None
        self._own_head: list[Warping] = []
        self._reported: set[str] = set()

    @property
    def active(self) -> dict[str, float]:
        """The terms that are computed (weight > 0), in registry order."""
        return {name: self.flow_weights[name] for name in _TERMS if self.flow_weights.get(name, 0) > 0}

    def _head(self, num_levels: int) -> list[Warping]:
        if self.warping_head is not None:
            if len(self.warping_head) != num_levels:
                message = f"the warping head has {len(self.warping_head)} levels but {num_levels} flows were given"
                raise ConfigError(message)
            return self.warping_head
        while len(self._own_head) < num_levels:
            self._own_head.append(Warping())
        return self._own_head[:num_levels]

    def _report(self, skipped: Mapping[str, str], num_tbins: int) -> None:
        for name, reason in skipped.items():
            if name not in self._reported:
                self._reported.add(name)
                _log.warning("loss %r contributes 0: it %s (got T=%d)", name, reason, num_tbins)

    def forward(
        self,
        flows: Sequence[Tensor],
        interpolated_inputs: Sequence[Tensor],
        batch_size: int,
        valid: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Computes the active terms.

        Args:
            flows: L flows (T * B, 2, h_i, w_i) in pixels of their level, coarsest first (row t * B + b).
            interpolated_inputs: the L matching inputs (T, B, C, h_i, w_i).
            batch_size: B.
            valid: optional (B,) bool; False marks padding samples, left out of every mean.

        Returns:
            Name -> weighted scalar, for each term whose weight is > 0.

        Raises:
            ConfigError: mismatched lists or shapes, or a micro-bin layout that does not fit the channels.
        """
        if not flows or len(flows) != len(interpolated_inputs):
            message = f"{len(flows)} flows for {len(interpolated_inputs)} input levels"
            raise ConfigError(message)
        num_levels = len(flows)
        head = self._head(num_levels)
        valid_mask = self._valid_mask(valid, batch_size, flows[-1].device)
        active = self.active
        device_type = flows[-1].device.type
        no_autocast = (
            torch.autocast(device_type=device_type, enabled=False)
            if device_type in _AUTOCAST_DEVICES
            else contextlib.nullcontext()
        )
        sums: dict[str, Tensor] = {}
        with no_autocast:
            for index, (flow, inputs) in enumerate(zip(flows, interpolated_inputs, strict=True)):
                if inputs.dim() != 5 or inputs.shape[1] != batch_size:
                    message = f"level {index}: inputs {tuple(inputs.shape)} are not (T, {batch_size}, C, h, w)"
                    raise ConfigError(message)
                level = LossLevel(
                    flow.float(),
                    inputs.float(),
                    head[index],
                    valid_mask,
                    self.micro_bins,
                    self.channels_per_micro_bin,
                )
                scale = 2.0 ** -(num_levels - 1 - index)
                for name in active:
                    value = scale * _TERMS[name](level, name in self.masked)
                    sums[name] = sums[name] + value if name in sums else value
                self._report(level.skipped, level.num_tbins)
        return {name: weight * sums[name] for name, weight in active.items()}

    @staticmethod
    def _valid_mask(valid: Tensor | None, batch_size: int, device: torch.device) -> Tensor | None:
        if valid is None:
            return None
        mask = torch.as_tensor(valid, device=device).reshape(-1).bool()
        if mask.numel() != batch_size:
            message = f"valid has {mask.numel()} entries for a batch of {batch_size}"
            raise ConfigError(message)
        return mask

    def extra_repr(self) -> str:
        """Active weights, masked terms and the micro-bin count, shown by ``repr``."""
        masked = sorted(self.masked & set(self.active))
        return f"weights={self.active}, masked={masked}, micro_bins={self.micro_bins}"
