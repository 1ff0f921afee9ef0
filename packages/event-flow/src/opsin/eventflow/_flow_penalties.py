"""Penalties on flows and residuals: the Charbonnier function, first and second order smoothness, displacement size.

Each smoothness penalty exposes ``penalties(flow, mask)``, the per-element map of rho(derivative) times its validity
(and the optional mask), so that a caller can choose how to average it; ``forward`` gives the plain loss value.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from opsin.eventflow.errors import ConfigError

__all__ = [
    "CHARBONNIER_ALPHA",
    "CHARBONNIER_BETA",
    "CHARBONNIER_EPSILON",
    "SecondOrderLoss",
    "SmoothnessLoss",
    "charbonnier",
    "charbonnier_loss",
    "extreme_displacement_loss",
    "second_order_validity",
]

CHARBONNIER_ALPHA = 0.45
CHARBONNIER_BETA = 1.0
CHARBONNIER_EPSILON = 1e-3


def charbonnier(
    x: Tensor, alpha: float = CHARBONNIER_ALPHA, beta: float = CHARBONNIER_BETA, epsilon: float = CHARBONNIER_EPSILON
) -> Tensor:
    """Element-wise robust penalty rho(x) = ((beta * x)^2 + epsilon^2)^alpha."""
    return ((beta * x) ** 2 + epsilon**2) ** alpha


def charbonnier_loss(
    x: Tensor,
    mask: Tensor | None = None,
    alpha: float = CHARBONNIER_ALPHA,
    beta: float = CHARBONNIER_BETA,
    epsilon: float = CHARBONNIER_EPSILON,
) -> Tensor:
    """Mean of rho(x) * mask over all elements (masked elements count as zeros in the mean).

    Args:
        x: residuals of any shape.
        mask: optional weights broadcastable to ``x`` (1 keeps an element, 0 zeroes it).
        alpha: exponent.
        beta: scale of the residual.
        epsilon: smoothing constant near zero.
    """
    penalty = charbonnier(x, alpha, beta, epsilon)
    if mask is not None:
        penalty = penalty * mask
    return penalty.mean()


def _check_flow(flow: Tensor) -> None:
    if flow.dim() != 4 or flow.shape[1] != 2:
        message = f"a flow must be shaped (N, 2, h, w), got {tuple(flow.shape)}"
        raise ConfigError(message)


class _CharbonnierPenalty(nn.Module):
    """A flow regulariser: Charbonnier penalties of some flow differences, averaged.

    Subclasses implement :meth:`penalties`; the loss is twice its mean (one mean for u plus one for v).

    Args:
        alpha: Charbonnier exponent.
        beta: Charbonnier scale.
        epsilon: Charbonnier smoothing constant.
    """

    def __init__(
        self, alpha: float = CHARBONNIER_ALPHA, beta: float = CHARBONNIER_BETA, epsilon: float = CHARBONNIER_EPSILON
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.epsilon = epsilon

    def _rho(self, x: Tensor) -> Tensor:
        return charbonnier(x, self.alpha, self.beta, self.epsilon)

    def penalties(self, flow: Tensor, mask: Tensor | None = None) -> Tensor:
        """The penalty map of one (N, 2, h, w) flow, zero where a difference is undefined."""
        raise NotImplementedError

    def forward(self, flow: Tensor, mask: Tensor | None = None) -> Tensor:
        """The loss of one (N, 2, h, w) flow."""
        return 2 * self.penalties(flow, mask).mean()


class SmoothnessLoss(_CharbonnierPenalty):
    """First-order smoothness: rho of forward differences of each flow component.

    D_x c(x, y) = c(x, y) - c(x + 1, y) is defined for x < w - 1 and D_y c(x, y) = c(x, y) - c(x, y + 1) for
    y < h - 1; undefined positions contribute zero, so any constant flow gives exactly the value of a zero flow.
    The loss is the mean over (N, 2 directions, h, w) for u plus the same mean for v.

    Args:
        alpha: Charbonnier exponent.
        beta: Charbonnier scale.
        epsilon: Charbonnier smoothing constant.
    """

    def penalties(self, flow: Tensor, mask: Tensor | None = None) -> Tensor:
        """(N, 4, h, w) map [D_x u, D_y u, D_x v, D_y v] penalised, 0 where undefined, times ``mask`` (N, 1, h, w)."""
        _check_flow(flow)
        n, _, h, w = flow.shape
        dx = flow.new_zeros(n, 2, h, w)
        dy = flow.new_zeros(n, 2, h, w)
        dx[..., :, : w - 1] = flow[..., :, : w - 1] - flow[..., :, 1:]
        dy[..., : h - 1, :] = flow[..., : h - 1, :] - flow[..., 1:, :]
        valid_x = flow.new_zeros(1, 1, h, w)
        valid_x[..., :, : w - 1] = 1
        valid_y = flow.new_zeros(1, 1, h, w)
        valid_y[..., : h - 1, :] = 1
        rho_x = self._rho(dx) * valid_x
        rho_y = self._rho(dy) * valid_y
        # Channel order (component, direction): u-x, u-y, v-x, v-y.
        out = torch.stack((rho_x, rho_y), dim=2).reshape(n, 4, h, w)
        return out if mask is None else out * mask


def _second_order_kernels() -> Tensor:
    kernels = torch.zeros(4, 1, 3, 3)
    kernels[0, 0, 1] = torch.tensor([1.0, -2.0, 1.0])  # horizontal
    kernels[1, 0, :, 1] = torch.tensor([1.0, -2.0, 1.0])  # vertical
    kernels[2, 0] = torch.tensor([[1.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.0]])  # main diagonal
    kernels[3, 0] = torch.tensor([[0.0, 0.0, 1.0], [0.0, -2.0, 0.0], [1.0, 0.0, 0.0]])  # anti-diagonal
    return kernels


def second_order_validity(height: int, width: int) -> Tensor:
    """(4, height, width) 0/1 map of where each second-order kernel is defined (no zero padding involved)."""
    valid = torch.zeros(4, height, width)
    valid[0, :, 1 : width - 1] = 1
    valid[1, 1 : height - 1, :] = 1
    valid[2:, 1 : height - 1, 1 : width - 1] = 1
    return valid


class SecondOrderLoss(_CharbonnierPenalty):
    """Second-order smoothness: rho of 3x3 second differences of each flow component.

    Kernels (cross-correlation): horizontal [1, -2, 1], vertical [1, -2, 1]^T, main diagonal (1 at the top-left and
    bottom-right), anti-diagonal (1 at the top-right and bottom-left), -2 at the centre. Horizontal is defined away
    from the first and last columns, vertical away from the first and last rows, the diagonals away from all four
    borders; elsewhere the penalty is zero, so any affine flow gives exactly the value of a zero flow. The loss is the
    mean over (N, 4, h, w) for u plus the same for v.

    Args:
        alpha: Charbonnier exponent.
        beta: Charbonnier scale.
        epsilon: Charbonnier smoothing constant.
    """

    @property
    def kernels(self) -> Tensor:
        """The four (4, 1, 3, 3) kernels that :meth:`penalties` evaluates (with slices, cheaper than a convolution)."""
        return _second_order_kernels()

    def penalties(self, flow: Tensor, mask: Tensor | None = None) -> Tensor:
        """(N, 8, h, w) map: the four second differences of u then of v, penalised, zero where undefined."""
        _check_flow(flow)
        n, _, h, w = flow.shape
        centre = 2 * flow[..., 1 : h - 1, 1 : w - 1]
        rho = self._rho
        out = flow.new_zeros(n, 2, 4, h, w)
        out[:, :, 0, :, 1 : w - 1] = rho(flow[..., :, : w - 2] - 2 * flow[..., :, 1 : w - 1] + flow[..., :, 2:])
        out[:, :, 1, 1 : h - 1, :] = rho(flow[..., : h - 2, :] - 2 * flow[..., 1 : h - 1, :] + flow[..., 2:, :])
        out[:, :, 2, 1 : h - 1, 1 : w - 1] = rho(flow[..., : h - 2, : w - 2] - centre + flow[..., 2:, 2:])
        out[:, :, 3, 1 : h - 1, 1 : w - 1] = rho(flow[..., : h - 2, 2:] - centre + flow[..., 2:, : w - 2])
        out = out.reshape(n, 8, h, w)
        return out if mask is None else out * mask


def extreme_displacement_loss(flow: Tensor, threshold: float = 0) -> Tensor:
    """Sum of m = u^2 + v^2 over the pixels where m > ``threshold``, divided by the number of pixels (N * h * w).

    Applied to the flow as given (the flow loss passes normalised flows).
    """
    _check_flow(flow)
    magnitude = (flow**2).sum(dim=1)
    return (magnitude * (magnitude > threshold)).sum() / magnitude.numel()
