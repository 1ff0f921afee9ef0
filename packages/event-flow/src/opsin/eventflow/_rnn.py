"""Convolutional recurrent cells (LSTM, GRU) and :class:`ConvRNN`, which runs one over a (T, B, C, H, W) sequence.

State protocol (shared by both cells):

* the state is zeros of shape (B, C, h, w), allocated lazily at the first step and re-allocated as zeros whenever the
  batch size, the spatial size or the device of the input changes;
* :class:`ConvRNN` detaches it at the start of every forward, so gradients flow through the T bins of one batch only
  (truncated back-propagation through time);
* it lives in non-persistent buffers: checkpoints never hold it and ``.to(device)`` moves it;
* ``reset(mask)`` multiplies it by a per-sample mask (1 = keep, 0 = forget).

Every cell has a ``detach_state`` method; containers find all cells below them by looking for it (a test that also
works inside TorchScript, where ``isinstance`` on a base class does not).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from opsin.eventflow._conv import ConvLayer, batch_to_time, time_to_batch
from opsin.eventflow.errors import ConfigError

__all__ = ["RNN_CELLS", "ConvGRUCell", "ConvLSTMCell", "ConvRNN", "as_reset_mask"]

#: Cell names accepted by :class:`ConvRNN` and the feature extractors.
RNN_CELLS = ("lstm", "gru")


def as_reset_mask(mask: Tensor | float | list[float]) -> Tensor:
    """A reset mask as a 1-D tensor: one value per sample, or a single value for all samples.

    Args:
        mask: a tensor of shape (B,), (B, 1, 1, 1) or (), a number, or a list of B numbers; 1 keeps the state of a
            sample, 0 zeroes it.
    """
    if isinstance(mask, Tensor):
        flat = mask
    elif isinstance(mask, float):
        flat = torch.tensor([mask])
    else:
        flat = torch.tensor(mask)
    return flat.reshape(-1)


def _masked(state: Tensor, mask: Tensor) -> Tensor:
    """``state`` (B, C, h, w) times the per-sample ``mask``; an empty state stays empty."""
    if state.numel() == 0:
        return state
    flat = mask.reshape(-1)
    if flat.numel() != 1 and flat.numel() != state.shape[0]:
        message = (
            "reset mask has "
            + str(flat.numel())
            + " values but the recurrent state holds "
            + str(state.shape[0])
            + " samples; pass one value per sample of the current batch"
        )
        raise ConfigError(message)
    return state * flat.to(device=state.device, dtype=state.dtype).view(-1, 1, 1, 1)


def _stale(state: Tensor, x: Tensor) -> bool:
    """Whether ``state`` cannot continue with input ``x`` (empty, or another batch size, size or device)."""
    return (
        state.dim() != 4
        or state.shape[0] != x.shape[0]
        or state.shape[2] != x.shape[2]
        or state.shape[3] != x.shape[3]
        or state.device != x.device
    )


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM step on pre-computed input gates.

    z = h2h(h) + x, split into (i, f, o, g) along channels; c <- sigmoid(f) * c + sigmoid(i) * tanh(g);
    h <- sigmoid(o) * tanh(c). The input ``x`` is the (B, 4C, h, w) output of the input convolution of :class:`ConvRNN`.

    Args:
        hidden_dim: C, channels of h and c.
        kernel_size: kernel of the full hidden convolution ``h2h`` (C -> 4C, bias, same padding).
    """

    def __init__(self, hidden_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.h2h = nn.Conv2d(hidden_dim, 4 * hidden_dim, kernel_size, padding=kernel_size // 2, bias=True)
        self.h: Tensor  # typed here for mypy; a class-level annotation would confuse TorchScript
        self.register_buffer("h", torch.zeros(0), persistent=False)
        self.c: Tensor
        self.register_buffer("c", torch.zeros(0), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """One step: (B, 4C, h, w) input gates -> (B, C, h, w) new hidden state."""
        if _stale(self.h, x):
            shape = [x.shape[0], self.hidden_dim, x.shape[2], x.shape[3]]
            self.h = torch.zeros(shape, dtype=x.dtype, device=x.device)
            self.c = torch.zeros(shape, dtype=x.dtype, device=x.device)
        gates = self.h2h(self.h) + x
        i, f, o, g = gates.chunk(4, 1)
        self.c = torch.sigmoid(f) * self.c + torch.sigmoid(i) * torch.tanh(g)
        self.h = torch.sigmoid(o) * torch.tanh(self.c)
        return self.h

    @torch.jit.export
    def detach_state(self) -> None:
        """Cuts the graph between batches."""
        self.h = self.h.detach()
        self.c = self.c.detach()

    @torch.jit.export
    def reset(self, mask: Tensor) -> None:
        """Multiplies h and c by ``mask`` (B,) or (B, 1, 1, 1): 1 keeps a sample, 0 zeroes it.

        Raises:
            ConfigError: the mask has neither 1 nor B values while a state is held.
        """
        self.h = _masked(self.h, mask)
        self.c = _masked(self.c, mask)

    @torch.jit.export
    def reset_all(self) -> None:
        """Zeroes h and c (they keep their shape)."""
        self.h = torch.zeros_like(self.h)
        self.c = torch.zeros_like(self.c)

    @torch.jit.ignore
    def get_state(self) -> list[Tensor]:
        """Detached copies of [h, c]."""
        return [self.h.detach().clone(), self.c.detach().clone()]

    @torch.jit.ignore
    def set_state(self, state: list[Tensor]) -> None:
        """Restores [h, c] from :meth:`get_state` (copies them)."""
        self.h, self.c = (s.detach().clone() for s in state)


class ConvGRUCell(nn.Module):
    """Convolutional GRU step.

    (z, r) = split(conv_rz([h, x])) (update gate first); u = sigmoid(z), r = sigmoid(r);
    n = tanh(conv_n([r * h, x])); h <- (1 - u) * h + u * n.

    Args:
        in_channels: channels of the input ``x``.
        hidden_dim: C, channels of h.
        kernel_size: kernel of both full convolutions (bias, same padding).
    """

    def __init__(self, in_channels: int, hidden_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        padding = kernel_size // 2
        self.conv_rz = nn.Conv2d(in_channels + hidden_dim, 2 * hidden_dim, kernel_size, padding=padding)
        self.conv_n = nn.Conv2d(in_channels + hidden_dim, hidden_dim, kernel_size, padding=padding)
        self.h: Tensor  # typed here for mypy; a class-level annotation would confuse TorchScript
        self.register_buffer("h", torch.zeros(0), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """One step: (B, C_in, h, w) -> (B, C, h, w) new hidden state."""
        if _stale(self.h, x):
            shape = [x.shape[0], self.hidden_dim, x.shape[2], x.shape[3]]
            self.h = torch.zeros(shape, dtype=x.dtype, device=x.device)
        z, r = self.conv_rz(torch.cat([self.h, x], 1)).chunk(2, 1)
        update = torch.sigmoid(z)
        candidate = torch.tanh(self.conv_n(torch.cat([torch.sigmoid(r) * self.h, x], 1)))
        self.h = (1 - update) * self.h + update * candidate
        return self.h

    @torch.jit.export
    def detach_state(self) -> None:
        """Cuts the graph between batches."""
        self.h = self.h.detach()

    @torch.jit.export
    def reset(self, mask: Tensor) -> None:
        """Multiplies h by ``mask`` (B,) or (B, 1, 1, 1): 1 keeps a sample, 0 zeroes it.

        Raises:
            ConfigError: the mask has neither 1 nor B values while a state is held.
        """
        self.h = _masked(self.h, mask)

    @torch.jit.export
    def reset_all(self) -> None:
        """Zeroes h (it keeps its shape)."""
        self.h = torch.zeros_like(self.h)

    @torch.jit.ignore
    def get_state(self) -> list[Tensor]:
        """A detached copy of [h]."""
        return [self.h.detach().clone()]

    @torch.jit.ignore
    def set_state(self, state: list[Tensor]) -> None:
        """Restores [h] from :meth:`get_state` (copies it)."""
        (h,) = state
        self.h = h.detach().clone()


class ConvRNN(nn.Module):
    """A recurrent convolutional layer over a (T, B, C_in, H, W) sequence.

    The input convolution ``x2h`` (k3, stride 1, norm, no activation) runs on all T bins at once and gives 4 * C_out
    channels (LSTM gates) or C_in channels (GRU input); the cell then steps through t = 0..T-1. The state is detached
    at the start of every forward.

    Args:
        in_channels: C_in.
        out_channels: C_out, the hidden size.
        cell: ``"lstm"`` or ``"gru"``.
        separable: depthwise-separable input convolution (depth multiplier 1) instead of a full one.
        norm: normalisation of the input convolution, ``"BatchNorm2d"`` or ``"none"``.
        kernel_size: kernel of the input and hidden convolutions.

    Raises:
        ConfigError: unknown cell or norm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cell: str = "lstm",
        separable: bool = False,
        norm: str = "BatchNorm2d",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.cell: ConvLSTMCell | ConvGRUCell
        if cell == "lstm":
            x2h_channels = 4 * out_channels
            self.cell = ConvLSTMCell(out_channels, kernel_size)
        elif cell == "gru":
            x2h_channels = in_channels
            self.cell = ConvGRUCell(in_channels, out_channels, kernel_size)
        else:
            message = f"unknown rnn cell {cell!r}; choices: {list(RNN_CELLS)}"
            raise ConfigError(message)
        self.x2h = ConvLayer(
            in_channels,
            x2h_channels,
            kernel_size,
            1,
            padding,
            norm=norm,
            activation="Identity",
            separable=separable,
        )

    def forward(self, x: Tensor) -> Tensor:
        """(T, B, C_in, H, W) -> (T, B, C_out, H, W), the hidden state after each bin."""
        self.cell.detach_state()
        x4, batch_size = time_to_batch(x)
        inputs = batch_to_time(self.x2h(x4), batch_size)
        outputs: list[Tensor] = []
        for t in range(inputs.shape[0]):
            outputs.append(self.cell(inputs[t]))
        return torch.stack(outputs, 0)

    @torch.jit.export
    def reset(self, mask: Tensor) -> None:
        """Multiplies the state by ``mask`` (see :meth:`ConvLSTMCell.reset`)."""
        self.cell.reset(mask)

    @torch.jit.export
    def reset_all(self) -> None:
        """Zeroes the state."""
        self.cell.reset_all()
