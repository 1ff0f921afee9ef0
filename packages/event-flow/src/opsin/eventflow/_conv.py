"""Convolution blocks of the flow networks and the (T, B, ...) <-> (T * B, ...) sequence helpers.

All blocks are TorchScript-compatible 4-D modules; :class:`SequenceWise` lifts any of them to (T, B, C, H, W) input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from opsin.eventflow.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "ConvLayer",
    "DepthwiseSeparableConv2d",
    "PreActBlock",
    "SEBlock",
    "SequenceWise",
    "batch_to_time",
    "time_to_batch",
]

#: Normalisations accepted by :class:`ConvLayer` (``"none"`` = identity).
NORMS = ("BatchNorm2d", "none")
#: Activations accepted by :class:`ConvLayer` (LeakyReLU has slope 0.01).
ACTIVATIONS = ("LeakyReLU", "ReLU", "Identity")


def time_to_batch(x: Tensor) -> tuple[Tensor, int]:
    """Folds the time axis into the batch axis.

    Args:
        x: (T, B, ...) sequence.

    Returns:
        ``(x4, B)``: the (T * B, ...) tensor, T-major (row ``t * B + b``), and the batch size needed to undo it.
    """
    return x.flatten(0, 1), x.shape[1]


def batch_to_time(x: Tensor, batch_size: int) -> Tensor:
    """Inverse of :func:`time_to_batch`: (T * B, ...) -> (T, B, ...)."""
    return x.unflatten(0, [-1, batch_size])


class SequenceWise(nn.Module):
    """Applies a module written for (N, ...) input to every bin of a (T, B, ...) sequence at once.

    Args:
        module: the wrapped module; it sees (T * B, ...) input.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        """(T, B, ...) -> (T, B, ...), the module applied to the T * B rows."""
        x4, batch_size = time_to_batch(x)
        return batch_to_time(self.module(x4), batch_size)


class DepthwiseSeparableConv2d(nn.Module):
    """A depthwise convolution (``depth_multiplier`` filters per input channel) followed by a 1x1 pointwise one.

    Both convolutions carry a bias when ``bias`` is true.

    Args:
        in_channels: input channels.
        out_channels: output channels of the pointwise convolution.
        kernel_size: depthwise kernel size.
        stride: depthwise stride.
        padding: depthwise zero padding.
        dilation: depthwise dilation.
        bias: whether both convolutions have a bias.
        depth_multiplier: depthwise outputs per input channel.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = True,
        depth_multiplier: int = 1,
    ) -> None:
        super().__init__()
        if depth_multiplier < 1:
            message = f"depth_multiplier must be >= 1, got {depth_multiplier}"
            raise ConfigError(message)
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(
            in_channels, mid, kernel_size, stride, padding, dilation, groups=in_channels, bias=bias
        )
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W')."""
        return self.pointwise(self.depthwise(x))


def _make_norm(norm: str, channels: int) -> nn.Module:
    if norm == "BatchNorm2d":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    message = f"unknown norm {norm!r}; choices: {list(NORMS)}"
    raise ConfigError(message)


def _make_activation(activation: str) -> nn.Module:
    if activation == "LeakyReLU":
        return nn.LeakyReLU(0.01)
    if activation == "ReLU":
        return nn.ReLU()
    if activation == "Identity":
        return nn.Identity()
    message = f"unknown activation {activation!r}; choices: {list(ACTIVATIONS)}"
    raise ConfigError(message)


class ConvLayer(nn.Module):
    """Convolution (full, or depthwise-separable) with a bias, then a normalisation, then an activation.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size.
        stride: stride.
        padding: zero padding.
        dilation: dilation.
        bias: whether the convolution(s) have a bias.
        norm: ``"BatchNorm2d"`` or ``"none"``.
        activation: ``"LeakyReLU"`` (slope 0.01), ``"ReLU"`` or ``"Identity"``.
        separable: use :class:`DepthwiseSeparableConv2d` instead of a full convolution.
        depth_multiplier: depthwise multiplier of the separable convolution.

    Raises:
        ConfigError: unknown norm or activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = True,
        norm: str = "BatchNorm2d",
        activation: str = "LeakyReLU",
        separable: bool = False,
        depth_multiplier: int = 1,
    ) -> None:
        super().__init__()
        self.conv: nn.Module
        if separable:
            self.conv = DepthwiseSeparableConv2d(
                in_channels, out_channels, kernel_size, stride, padding, dilation, bias, depth_multiplier
            )
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)
        self.norm = _make_norm(norm, out_channels)
        self.activation = _make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W')."""
        return self.activation(self.norm(self.conv(x)))


class SEBlock(nn.Module):
    """Residual block with squeeze-and-excitation channel weights.

    y = ReLU(BN(conv3x3(ReLU(BN(conv3x3_stride(x)))))); w = sigmoid(fc2(ReLU(fc1(mean_hw(y))))) with 1x1 convolutions
    reducing to ``out_channels // 4``; the output is y * w + shortcut(x), where the shortcut is a strided 1x1
    convolution without bias when the stride or channel count changes, else the identity. No activation follows the sum.

    Args:
        in_channels: input channels.
        out_channels: output channels, a multiple of 4.
        stride: stride of the first convolution and of the shortcut.

    Raises:
        ConfigError: ``out_channels`` is not a positive multiple of 4.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < 4 or out_channels % 4:
            message = f"SEBlock needs out_channels a positive multiple of 4, got {out_channels}"
            raise ConfigError(message)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.squeeze = nn.Conv2d(out_channels, out_channels // 4, 1)
        self.excite = nn.Conv2d(out_channels // 4, out_channels, 1)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        weights = torch.sigmoid(self.excite(torch.relu(self.squeeze(y.mean(dim=(2, 3), keepdim=True)))))
        return y * weights + self.shortcut(x)


#: The name the original used for the squeeze-excitation block.
PreActBlock = SEBlock
