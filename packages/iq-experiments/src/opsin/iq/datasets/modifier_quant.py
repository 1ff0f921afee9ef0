"""``DSModifier_quant``: keep the top bits of every pixel word."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value
from opsin.iq.errors import ModifierParamError

__all__ = ["DSModifier_quant", "quantize"]


def quantize(img: np.ndarray, bits: int, bit_depth: int | None = None) -> np.ndarray:
    """Keep the top ``bits`` of a ``B``-bit word: ``x & (((1 << bits) - 1) << (B - bits))``.

    Args:
        img: unsigned integer array.
        bits: bits kept, 1..B.
        bit_depth: ``B``; default 8 for uint8, 16 for uint16 (the dtype's size in general).

    Returns:
        The quantised array, same dtype.

    Raises:
        TypeError: float or signed dtype.
        ValueError: ``bits`` outside ``1..B`` or ``bit_depth`` larger than the dtype.
    """
    dt = img.dtype
    if not np.issubdtype(dt, np.unsignedinteger):
        msg = f"quant modifier needs an unsigned integer image, got dtype {dt}"
        raise TypeError(msg)
    depth = int(bit_depth) if bit_depth else dt.itemsize * 8
    if depth < 1 or depth > dt.itemsize * 8:
        msg = f"quant modifier: bit_depth={depth} does not fit dtype {dt}"
        raise ValueError(msg)
    if not 1 <= int(bits) <= depth:
        msg = f"quant modifier: bits={bits} must be within 1..{depth}"
        raise ValueError(msg)
    mask = ((1 << int(bits)) - 1) << (depth - int(bits))
    return np.bitwise_and(img, np.asarray(mask, dtype=dt))


class DSModifier_quant(DSModifier_dir):  # noqa: N801
    """Bit-depth reduction, ``params = {"bits": 4}`` (+ optional ``bit_depth``); name ``quant{bits}_modifier``."""

    algo_version = 1
    #: Accepted parameters (``bits`` is checked against the image dtype again when applied).
    PARAMS: ClassVar[dict[str, Param]] = {"bits": Param("int", 1, 64), "bit_depth": Param("int", 1, 64)}

    def __init__(
        self, ds_modifier: DSModifier | None = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.params = {"bits": 4, **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        depth = self.params.get("bit_depth") or 16
        if self.params["bits"] > depth:
            bits = self.params["bits"]
            msg = f"{type(self).__name__}: parameter 'bits' is out of range (allowed 1..{depth}), got {bits}"
            raise ModifierParamError(msg)
        self.name = f"quant{format_param_value(self.params['bits'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return quantize(img, int(self.params["bits"]), self.params.get("bit_depth"))
