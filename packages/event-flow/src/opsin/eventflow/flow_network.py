"""The recurrent multi-scale flow network: a feature extractor plus the pyramid and warping heads of the losses.

Only the feature extractor is a TorchScript graph: ``torch.jit.script(FlowNetwork(...))`` compiles ``forward``,
``reset``, ``reset_all`` and ``get_nb_scales``, while the pyramid and the warping heads (plain objects used by the
losses and :meth:`FlowNetwork.sharpen`) stay in Python.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from opsin.eventflow._conv import time_to_batch
from opsin.eventflow._rnn import ConvGRUCell, ConvLSTMCell
from opsin.eventflow._unet import UnetRegressor
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.feature_extractor import AVAILABLE_ARCHS
from opsin.eventflow.preprocessing import get_preprocess_info
from opsin.eventflow.warping import Pyramid, Warping

__all__ = ["FlowNetwork"]


def _build_extractor(name: str, in_channels: int, kwargs: Mapping[str, Any]) -> UnetRegressor:
    """The feature extractor ``name`` for ``in_channels``, with unknown names and keywords turned into ConfigError."""
    if name not in AVAILABLE_ARCHS:
        message = f"unknown feature_extractor_name {name!r}; choices: {sorted(AVAILABLE_ARCHS)}"
        raise ConfigError(message)
    builder = AVAILABLE_ARCHS[name]
    try:
        inspect.signature(builder).bind(in_channels, **kwargs)
    except TypeError as error:
        message = f"feature extractor {name!r} does not accept the network arguments {sorted(kwargs)}: {error}"
        raise ConfigError(message) from None
    return builder(in_channels, **kwargs)


class FlowNetwork(nn.Module):
    """Recurrent U-Net that predicts one forward flow per bin at L scales, coarsest first.

    Flows are in pixels per bin at the resolution of their level; flow t moves the content of bin t onto bin t + 1.

    Args:
        array_dim: (T, C, H, W) of the input sequences; C is the feature extractor's input channels, and H and W must
            be divisible by 2^(L-1).
        flow_loss_weights: loss name -> weight, only stored (the training module builds the loss from it).
        feature_extractor_name: one of :data:`~opsin.eventflow.feature_extractor.AVAILABLE_ARCHS`.
        **kwargs: passed to the feature extractor (``base``, ``scales``, ``separable``, ``rnn_cell``, ``depth``).

    Attributes:
        feature_extractor: the :class:`~opsin.eventflow.layers.UnetRegressor`.
        pyramid: :class:`~opsin.eventflow.warping.Pyramid` of L levels (outside TorchScript).
        warping_head: list of L :class:`~opsin.eventflow.warping.Warping` objects (no parameters, outside TorchScript).

    Raises:
        ConfigError: unknown extractor name or keyword, bad ``array_dim``, or H, W not divisible by 2^(L-1).
    """

    # Plain Python helpers of the losses: TorchScript must neither compile nor type them.
    __jit_ignored_attributes__: ClassVar[list[str]] = [
        "_ddp_params_and_buffers_to_ignore",
        "array_dim",
        "flow_loss_weights",
        "pyramid",
        "warping_head",
    ]

    def __init__(
        self,
        array_dim: Sequence[int],
        flow_loss_weights: Mapping[str, float] | None,
        feature_extractor_name: str = "eminet",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if len(array_dim) != 4 or any(int(v) < 1 for v in array_dim):
            message = f"array_dim must be (T, C, H, W) of positive sizes, got {tuple(array_dim)}"
            raise ConfigError(message)
        num_tbins, in_channels, height, width = (int(v) for v in array_dim)
        self.array_dim = (num_tbins, in_channels, height, width)
        self.flow_loss_weights = dict(flow_loss_weights) if flow_loss_weights is not None else None
        self.feature_extractor = _build_extractor(feature_extractor_name, in_channels, kwargs)
        self.scales = self.feature_extractor.scales
        self.in_channels = in_channels
        self.size_multiple = 1 << (self.scales - 1)
        if height % self.size_multiple or width % self.size_multiple:
            message = (
                f"array_dim height {height} and width {width} must be divisible by 2^(scales-1) = "
                f"{self.size_multiple} for {self.scales} scales; pick a resolution that is"
            )
            raise ConfigError(message)
        self.pyramid = Pyramid(self.scales)
        self.warping_head = [Warping() for _ in range(self.scales)]
        # DistributedDataParallel re-broadcasts rank 0's buffers before every forward; each rank carries its own
        # sequences, so the recurrent state must stay out of that sync.
        self._ddp_params_and_buffers_to_ignore = self.recurrent_state_names()

    def forward(self, inputs: Tensor) -> list[Tensor]:
        """Flows of a (T, B, C, H, W) sequence, advancing the recurrent state.

        Returns:
            L tensors, coarsest first; item i is (T, B, 2, H / 2^(L-1-i), W / 2^(L-1-i)).

        Raises:
            ConfigError: wrong rank or channel count, or H, W not divisible by 2^(L-1).
        """
        if inputs.dim() != 5 or inputs.shape[2] != self.in_channels:
            raise ConfigError(
                "expected inputs of shape (T, B, " + str(self.in_channels) + ", H, W), got " + str(inputs.shape)
            )
        if inputs.shape[3] % self.size_multiple != 0 or inputs.shape[4] % self.size_multiple != 0:
            raise ConfigError(
                "input height and width must be divisible by "
                + str(self.size_multiple)
                + ", got "
                + str(inputs.shape[3])
                + "x"
                + str(inputs.shape[4])
            )
        return self.feature_extractor(inputs)

    @torch.jit.export
    def reset(self, mask: Tensor | float | list[float]) -> None:
        """Multiplies the state of every recurrent cell, however deep, by a per-sample mask.

        Args:
            mask: (B,) or (B, 1, 1, 1) tensor, a list of B numbers or one number; 1 keeps a sample's memory, 0 zeroes
                it (a new sequence starts in that batch column).

        Raises:
            ConfigError: the mask has neither 1 nor B values while a state is held.
        """
        # Every recurrent cell lives in the feature extractor, whose reset visits all of them however deep.
        self.feature_extractor.reset(mask)

    @torch.jit.export
    def reset_all(self) -> None:
        """Zeroes the state of every recurrent cell."""
        self.feature_extractor.reset_all()

    def _cells(self) -> list[ConvLSTMCell | ConvGRUCell]:
        return [module for module in self.modules() if isinstance(module, ConvLSTMCell | ConvGRUCell)]

    def recurrent_state_names(self, prefix: str = "") -> list[str]:
        """Qualified names of the recurrent-state buffers, e.g. ``feature_extractor.middle.cell.h``.

        A module that holds this network under ``network`` and is wrapped by DistributedDataParallel sets
        ``self._ddp_params_and_buffers_to_ignore = network.recurrent_state_names("network.")`` so that DDP does not
        overwrite every rank's state with rank 0's (this network sets it for itself).
        """
        return [
            f"{prefix}{name}.{buffer}"
            for name, module in self.named_modules()
            if isinstance(module, ConvLSTMCell | ConvGRUCell)
            for buffer, _ in module.named_buffers(recurse=False)
        ]

    def get_states(self) -> list[list[Tensor]]:
        """Detached copies of the state of every recurrent cell, in module order (for :meth:`set_states`)."""
        return [cell.get_state() for cell in self._cells()]

    def set_states(self, states: Sequence[Sequence[Tensor]]) -> None:
        """Restores states saved by :meth:`get_states` (copies them).

        Raises:
            ConfigError: the number of saved states does not match the number of cells.
        """
        cells = self._cells()
        if len(states) != len(cells):
            message = f"{len(states)} saved states for {len(cells)} recurrent cells"
            raise ConfigError(message)
        for cell, state in zip(cells, states):
            cell.set_state(list(state))

    @torch.jit.export
    def get_nb_scales(self) -> int:
        """L, the number of flows returned (also available on the scripted network)."""
        return self.scales

    def get_warping_head(self) -> list[Warping]:
        """The L warping objects, coarsest level first."""
        return self.warping_head

    def interpolate_all_inputs_using_pyramid(self, inputs: Tensor) -> list[Tensor]:
        """The input resized to every level (bilinear, align_corners), coarsest first; the finest is ``inputs``."""
        return self.pyramid.compute_all_levels(inputs)

    def sharpen(
        self,
        inputs: Tensor,
        micro_tbin: int = 0,
        depth_level: int = -1,
        *,
        micro_bins: int | None = None,
        preprocess: str = "event_cube",
        preprocess_kwargs: Mapping[str, Any] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Runs the network and warps every micro-bin of the input onto ``micro_tbin`` with the flow of one level.

        S_m(x) = X_m(x + F(x) * (m - m*) / M) on the input resized to the level; sharp edges mean a good flow. The
        recurrent state advances as in :meth:`forward`.

        Args:
            inputs: (T, B, C, H, W) micro-binned features (channel P * m + p).
            micro_tbin: the target micro-bin m*.
            depth_level: the level whose flow is used (-1 = finest).
            micro_bins: M; by default the micro-bin count of ``preprocess`` in the preprocessing registry.
            preprocess: preprocessing name that gives M when ``micro_bins`` is None.
            preprocess_kwargs: its keyword arguments.

        Returns:
            ``(flow, sharp)``: the level's flow (T * B, 2, h, w) and the sharpened input (T, B, C, h, w).

        Raises:
            ConfigError: fewer than 2 micro-bins, a bad level or micro-bin, or channels not a multiple of M.
        """
        if micro_bins is None:
            micro_bins = int(get_preprocess_info(preprocess, preprocess_kwargs)["micro_bins"])
        if micro_bins < 2:
            message = f"sharpen needs micro-binned features (at least 2 micro-bins), got {micro_bins}"
            raise ConfigError(message)
        if not -self.scales <= depth_level < self.scales:
            message = f"depth_level {depth_level} is outside the {self.scales} levels of this network"
            raise ConfigError(message)
        flow, _ = time_to_batch(self.forward(inputs)[depth_level])
        level_inputs = self.pyramid.compute_level(inputs, depth_level)
        sharp = self.warping_head[depth_level].sharpen_micro_tbin(level_inputs, flow, micro_tbin, micro_bins)
        return flow, sharp
