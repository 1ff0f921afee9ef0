"""The U-Net regressor with a recurrent bottleneck that every feature extractor returns."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from opsin.eventflow._conv import batch_to_time, time_to_batch
from opsin.eventflow._rnn import as_reset_mask
from opsin.eventflow.errors import ConfigError

__all__ = ["UnetRegressor"]


class _DecoderLevel(nn.Module):
    """One decoder level: its block and the 3x3 regressor that reads a flow off the block's output."""

    def __init__(self, block: nn.Module, channels: int, n_output_channels: int) -> None:
        super().__init__()
        self.block = block
        self.regressor = nn.Conv2d(channels, n_output_channels, 3, padding=1, bias=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, flow) of the level."""
        features = self.block(x)
        return features, self.regressor(features)


class UnetRegressor(nn.Module):
    """Encoder, recurrent middle and decoder that regress one flow per decoder level, coarsest first.

    Encoder block j (stride 2) gives skip_j. Decoder level j concatenates the previous feature (the middle output for
    j = 0) with skip_{L-1-j}, upsamples the result (nearest) to the size of the input of encoder block L-1-j, and for
    j > 0 appends the previous flow, nearest-upsampled without rescaling its values (a feature, not a residual); the
    level's block and a 3x3 regressor without activation then give flow_j. The raw input is never a skip. So the
    block inputs have middle + down[L-1] channels (j = 0) and up[j-1] + down[L-1-j] + 2 channels (j > 0).

    Encoder and decoder blocks see (T * B, C, h, w) tensors; the middle sees the (T, B, C, h, w) sequence, so that a
    recurrent middle steps through time.

    Args:
        encoders: L stride-2 blocks, shallowest first.
        middle: the bottleneck, a (T, B, C, h, w) -> (T, B, C', h, w) module.
        decoders: L blocks, deepest first.
        down_channels: output channels of the encoders.
        middle_channels: output channels of the middle.
        up_channels: output channels of the decoders.
        n_output_channels: channels of each regressed map (2 for a flow).

    Attributes:
        scales: L, the number of flows returned.
        channels: the layout down + [middle] + up, e.g. [4, 8, 16, 8, 4] for L = 2 and base 4.

    Raises:
        ConfigError: the block and channel lists disagree in length, or L < 1.
    """

    def __init__(
        self,
        encoders: Sequence[nn.Module],
        middle: nn.Module,
        decoders: Sequence[nn.Module],
        down_channels: Sequence[int],
        middle_channels: int,
        up_channels: Sequence[int],
        n_output_channels: int = 2,
    ) -> None:
        super().__init__()
        lengths = {len(encoders), len(decoders), len(down_channels), len(up_channels)}
        if len(lengths) != 1 or not encoders:
            message = (
                f"a U-Net needs as many encoders ({len(encoders)}), decoders ({len(decoders)}), down channels "
                f"({len(down_channels)}) and up channels ({len(up_channels)}), at least one of each"
            )
            raise ConfigError(message)
        self.scales = len(encoders)
        self.channels = [*down_channels, middle_channels, *up_channels]
        self.encoders = nn.ModuleList(encoders)
        self.middle = middle
        self.decoders = nn.ModuleList(
            _DecoderLevel(block, channels, n_output_channels) for block, channels in zip(decoders, up_channels)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """(T, B, C, H, W) -> L flows (T, B, 2, H / 2^(L-1-i), W / 2^(L-1-i)), coarsest first."""
        features, batch_size = time_to_batch(x)
        input_sizes: list[list[int]] = []
        skips: list[Tensor] = []
        for encoder in self.encoders:
            input_sizes.append([features.shape[2], features.shape[3]])
            features = encoder(features)
            skips.append(features)
        features = self.middle(batch_to_time(features, batch_size)).flatten(0, 1)
        flows: list[Tensor] = []
        for j, level in enumerate(self.decoders):
            size = input_sizes[self.scales - 1 - j]
            merged = F.interpolate(torch.cat([features, skips[self.scales - 1 - j]], 1), size=size, mode="nearest")
            if j > 0:
                previous = F.interpolate(flows[j - 1], size=size, mode="nearest")
                merged = torch.cat([merged, previous], 1)
            features, flow = level(merged)
            flows.append(flow)
        return [batch_to_time(flow, batch_size) for flow in flows]

    @torch.jit.export
    def reset(self, mask: Tensor | float | list[float]) -> None:
        """Multiplies the state of every recurrent cell by ``mask`` (B,) or (B, 1, 1, 1): 1 keeps, 0 zeroes.

        Raises:
            ConfigError: the mask has neither 1 nor B values while a state is held.
        """
        flat = as_reset_mask(mask)
        for module in self.modules():
            if hasattr(module, "detach_state"):
                module.reset(flat)  # type: ignore[operator]

    @torch.jit.export
    def reset_all(self) -> None:
        """Zeroes the state of every recurrent cell."""
        for module in self.modules():
            if hasattr(module, "detach_state"):
                module.reset_all()  # type: ignore[operator]
