"""The four flow-network architectures; each returns a :class:`~opsin.eventflow.layers.UnetRegressor`.

Channel layout for ``base`` and ``scales`` L: down = [base * 2^i for i < L], middle = 2 * down[-1],
up = reversed(down); e.g. L = 2, base 4 gives [4, 8, 16, 8, 4]. Encoder blocks have stride 2, the recurrent middle
runs at 1/2^L of the input size, and the decoder regresses one flow per level at 1/2^(L-1-j) of it.

| arch | encoder block | middle | decoder block |
|---|---|---|---|
| eminet | depthwise k3 s2 (x4 multiplier) + 1x1, LeakyReLU | ConvRNN, separable input conv | ConvLayer, BN, LeakyReLU |
| eminet_non_sep | full conv k3 s2, LeakyReLU | ConvRNN, full input conv | full ConvLayer, BN, LeakyReLU |
| midinet | SEBlock stride 2 | ConvRNN | as eminet |
| midinet2 | SEBlock stride 2 | ConvLayer + ``depth`` ReZero-weighted residual ConvRNNs | as eminet |

``separable`` makes the decoder (and, for midinet/midinet2, the middle) convolutions depthwise-separable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from opsin.eventflow._conv import ConvLayer, SEBlock, batch_to_time, time_to_batch
from opsin.eventflow._rnn import RNN_CELLS, ConvRNN
from opsin.eventflow._unet import UnetRegressor
from opsin.eventflow.errors import ConfigError

__all__ = [
    "AVAILABLES_ARCHS",
    "AVAILABLE_ARCHS",
    "eminet",
    "eminet_non_sep",
    "midinet",
    "midinet2",
]


def _layout(n_input_channels: int, base: int, scales: int, rnn_cell: str) -> tuple[list[int], int, list[int]]:
    """(down, middle, up) channels after validating the common arguments."""
    if n_input_channels < 1 or base < 1 or scales < 1:
        message = f"n_input_channels, base and scales must be >= 1, got {n_input_channels}, {base}, {scales}"
        raise ConfigError(message)
    if rnn_cell not in RNN_CELLS:
        message = f"unknown rnn_cell {rnn_cell!r}; choices: {list(RNN_CELLS)}"
        raise ConfigError(message)
    down = [base * 2**i for i in range(scales)]
    return down, 2 * down[-1], down[::-1]


def _decoder_inputs(down: list[int], middle: int, up: list[int]) -> list[int]:
    """Input channels of each decoder block: middle + skip, then previous level + skip + previous flow."""
    scales = len(down)
    return [middle + down[-1]] + [up[j - 1] + down[scales - 1 - j] + 2 for j in range(1, scales)]


def _decoders(down: list[int], middle: int, up: list[int], separable: bool) -> list[nn.Module]:
    inputs = _decoder_inputs(down, middle, up)
    return [ConvLayer(c_in, c_out, 3, 1, 1, separable=separable) for c_in, c_out in zip(inputs, up)]


def _se_encoders(n_input_channels: int, down: list[int]) -> list[nn.Module]:
    if down[0] % 4:
        message = f"the squeeze-excitation encoder needs base a multiple of 4, got {down[0]}"
        raise ConfigError(message)
    return [SEBlock(c_in, c_out, stride=2) for c_in, c_out in zip([n_input_channels, *down[:-1]], down)]


def eminet(
    n_input_channels: int,
    base: int = 16,
    scales: int = 3,
    separable: bool = True,
    rnn_cell: str = "lstm",
    **kwargs: Any,
) -> UnetRegressor:
    """Minimal-footprint network: depthwise-separable encoder, recurrent middle with a separable input conv.

    Args:
        n_input_channels: channels per bin of the input features.
        base: channels of the first encoder block.
        scales: L, number of encoder/decoder levels and of returned flows.
        separable: depthwise-separable decoder convolutions.
        rnn_cell: ``"lstm"`` or ``"gru"``.
        **kwargs: accepted and ignored, so that one keyword dict fits every architecture.

    Raises:
        ConfigError: invalid sizes or cell name.
    """
    down, middle, up = _layout(n_input_channels, base, scales, rnn_cell)
    encoders: list[nn.Module] = [
        ConvLayer(c_in, c_out, 3, 2, 1, norm="none", separable=True, depth_multiplier=4)
        for c_in, c_out in zip([n_input_channels, *down[:-1]], down)
    ]
    rnn = ConvRNN(down[-1], middle, rnn_cell, separable=True)
    return UnetRegressor(encoders, rnn, _decoders(down, middle, up, separable), down, middle, up)


def eminet_non_sep(
    n_input_channels: int,
    base: int = 16,
    scales: int = 3,
    rnn_cell: str = "lstm",
    **kwargs: Any,
) -> UnetRegressor:
    """Eminet with full convolutions everywhere.

    Args:
        n_input_channels: channels per bin of the input features.
        base: channels of the first encoder block.
        scales: L, number of encoder/decoder levels and of returned flows.
        rnn_cell: ``"lstm"`` or ``"gru"``.
        **kwargs: accepted and ignored (``separable`` included), so that one keyword dict fits every architecture.

    Raises:
        ConfigError: invalid sizes or cell name.
    """
    down, middle, up = _layout(n_input_channels, base, scales, rnn_cell)
    encoders: list[nn.Module] = [
        ConvLayer(c_in, c_out, 3, 2, 1, norm="none") for c_in, c_out in zip([n_input_channels, *down[:-1]], down)
    ]
    rnn = ConvRNN(down[-1], middle, rnn_cell, separable=False)
    return UnetRegressor(encoders, rnn, _decoders(down, middle, up, False), down, middle, up)


def midinet(
    n_input_channels: int,
    base: int = 16,
    scales: int = 3,
    separable: bool = True,
    rnn_cell: str = "lstm",
    **kwargs: Any,
) -> UnetRegressor:
    """Squeeze-excitation residual encoder, recurrent middle, eminet decoder.

    Args:
        n_input_channels: channels per bin of the input features.
        base: channels of the first encoder block, a multiple of 4.
        scales: L, number of encoder/decoder levels and of returned flows.
        separable: depthwise-separable middle input conv and decoder convolutions.
        rnn_cell: ``"lstm"`` or ``"gru"``.
        **kwargs: accepted and ignored, so that one keyword dict fits every architecture.

    Raises:
        ConfigError: invalid sizes or cell name.
    """
    down, middle, up = _layout(n_input_channels, base, scales, rnn_cell)
    rnn = ConvRNN(down[-1], middle, rnn_cell, separable=separable)
    return UnetRegressor(
        _se_encoders(n_input_channels, down), rnn, _decoders(down, middle, up, separable), down, middle, up
    )


class _ReZeroRecurrentMiddle(nn.Module):
    """ConvLayer (no norm, ReLU) to the middle width, then ``depth`` residual steps x <- x + w_i * ReLU(ConvRNN_i(x)).

    The weights w start at 0 (ReZero), so the block starts as the plain entry convolution.
    """

    def __init__(self, in_channels: int, channels: int, rnn_cell: str, depth: int, separable: bool) -> None:
        super().__init__()
        self.entry = ConvLayer(in_channels, channels, 3, 1, 1, norm="none", activation="ReLU", separable=separable)
        self.rnns = nn.ModuleList(
            ConvRNN(channels, channels, rnn_cell, separable=separable, norm="none") for _ in range(depth)
        )
        self.rezero = nn.Parameter(torch.zeros(depth))

    def forward(self, x: Tensor) -> Tensor:
        """(T, B, C_in, h, w) -> (T, B, C, h, w)."""
        x4, batch_size = time_to_batch(x)
        x = batch_to_time(self.entry(x4), batch_size)
        for i, rnn in enumerate(self.rnns):
            x = x + self.rezero[i] * torch.relu(rnn(x))
        return x


def midinet2(
    n_input_channels: int,
    base: int = 16,
    scales: int = 3,
    separable: bool = True,
    rnn_cell: str = "lstm",
    depth: int = 1,
) -> UnetRegressor:
    """Midinet whose middle is ``depth`` ReZero-weighted residual recurrent layers (no normalisation).

    Args:
        n_input_channels: channels per bin of the input features.
        base: channels of the first encoder block, a multiple of 4.
        scales: L, number of encoder/decoder levels and of returned flows.
        separable: depthwise-separable middle and decoder convolutions.
        rnn_cell: ``"lstm"`` or ``"gru"``.
        depth: number of residual recurrent layers, >= 1.

    Raises:
        ConfigError: invalid sizes, depth or cell name.
    """
    down, middle, up = _layout(n_input_channels, base, scales, rnn_cell)
    if depth < 1:
        message = f"midinet2 needs depth >= 1, got {depth}"
        raise ConfigError(message)
    rnn = _ReZeroRecurrentMiddle(down[-1], middle, rnn_cell, depth, separable)
    return UnetRegressor(
        _se_encoders(n_input_channels, down), rnn, _decoders(down, middle, up, separable), down, middle, up
    )


#: Architecture name -> builder ``f(n_input_channels, **kwargs) -> UnetRegressor``.
AVAILABLE_ARCHS: dict[str, Callable[..., UnetRegressor]] = {
    "eminet": eminet,
    "eminet_non_sep": eminet_non_sep,
    "midinet": midinet,
    "midinet2": midinet2,
}
#: The original's spelling of :data:`AVAILABLE_ARCHS`.
AVAILABLES_ARCHS = AVAILABLE_ARCHS
