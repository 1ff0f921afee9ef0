"""``DSModifier_sharpness``: blend with a smoothed copy (torchvision ``adjust_sharpness`` semantics)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from opsin.iq._arrays import dtype_max, is_integer, to_dtype
from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value

__all__ = ["DSModifier_sharpness", "adjust_sharpness"]

_KERNEL = np.array([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0


def adjust_sharpness(img: np.ndarray, factor: float) -> np.ndarray:
    """``B + factor * (X - B)`` with ``B`` the 3x3 smoothing of ``X`` on interior pixels (``B = X`` on the border).

    Args:
        img: ``HxW`` or ``HxWxC``, any dtype.
        factor: 1 identity, 0 fully smoothed, > 1 sharpens.

    Returns:
        Same shape and dtype; integers clipped to ``[0, max]``.
    """
    x = img.astype(np.float64)
    bands = x[..., None] if x.ndim == 2 else x
    smooth = bands.copy()
    if bands.shape[0] > 2 and bands.shape[1] > 2:
        for b in range(bands.shape[2]):
            conv = ndimage.correlate(bands[..., b], _KERNEL, mode="constant")
            smooth[1:-1, 1:-1, b] = conv[1:-1, 1:-1]
    out = smooth + float(factor) * (bands - smooth)
    if is_integer(img.dtype):
        out = np.clip(out, 0.0, dtype_max(img.dtype))
    res = out[..., 0] if img.ndim == 2 else out
    return to_dtype(res, img.dtype)


class DSModifier_sharpness(DSModifier_dir):  # noqa: N801
    """Sharpness change, ``params = {"sharpness": 2}``; name ``sharpness{sharpness}_modifier``."""

    algo_version = 1
    #: Accepted parameters: the blend factor (0 smooth, 1 identity, above 1 sharper).
    PARAMS: ClassVar[dict[str, Param]] = {"sharpness": Param("float", 0, None)}

    def __init__(
        self, ds_modifier: DSModifier | None = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.params = {"sharpness": 2, **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        self.name = f"sharpness{format_param_value(self.params['sharpness'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return adjust_sharpness(img, float(self.params["sharpness"]))
