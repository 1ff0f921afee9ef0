"""Building blocks of the flow networks.

* Sequences are (T, B, C, H, W): :func:`time_to_batch` folds them to (T * B, C, H, W) (row ``t * B + b``),
  :func:`batch_to_time` unfolds them, and :class:`SequenceWise` applies a 4-D module to a sequence.
* Convolutions: :class:`ConvLayer` (conv with bias -> norm -> activation, full or depthwise-separable),
  :class:`DepthwiseSeparableConv2d`, and the squeeze-excitation residual block :class:`SEBlock` (alias
  :data:`PreActBlock`).
* Recurrence: :class:`ConvLSTMCell`, :class:`ConvGRUCell` and :class:`ConvRNN`, whose state is lazily allocated,
  detached at every forward, never saved in checkpoints, and reset per sample with ``reset(mask)``.
* :class:`UnetRegressor`: the U-Net with a recurrent bottleneck that regresses one flow per scale, coarsest first.

Every module here compiles with ``torch.jit.script``.
"""

from opsin.eventflow._conv import (
    ACTIVATIONS,
    NORMS,
    ConvLayer,
    DepthwiseSeparableConv2d,
    PreActBlock,
    SEBlock,
    SequenceWise,
    batch_to_time,
    time_to_batch,
)
from opsin.eventflow._rnn import RNN_CELLS, ConvGRUCell, ConvLSTMCell, ConvRNN, as_reset_mask
from opsin.eventflow._unet import UnetRegressor

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "RNN_CELLS",
    "ConvGRUCell",
    "ConvLSTMCell",
    "ConvLayer",
    "ConvRNN",
    "DepthwiseSeparableConv2d",
    "PreActBlock",
    "SEBlock",
    "SequenceWise",
    "UnetRegressor",
    "as_reset_mask",
    "batch_to_time",
    "time_to_batch",
]
