"""``DSModifier_blur``: separable Gaussian blur with a reflect-101 border."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from opsin.iq._arrays import to_dtype
from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value

__all__ = ["DSModifier_blur", "gaussian_blur", "gaussian_kernel_1d"]


def gaussian_kernel_1d(sigma: float, kernel_size: int | None = None) -> np.ndarray:
    """Gaussian taps at integer offsets ``-h..h``, normalised to sum 1.

    Args:
        sigma: standard deviation in pixels (> 0).
        kernel_size: ``2h+1`` (odd); default ``max(7, 2*ceil(3 sigma)+1)``.

    Returns:
        The 1-D kernel.

    Raises:
        ValueError: non-positive sigma or an even/non-positive kernel size.
    """
    if not sigma > 0:
        msg = f"blur sigma must be > 0, got {sigma}"
        raise ValueError(msg)
    size = int(kernel_size) if kernel_size else max(7, 2 * math.ceil(3 * sigma) + 1)
    if size < 1 or size % 2 == 0:
        msg = f"blur kernel_size must be a positive odd integer, got {kernel_size}"
        raise ValueError(msg)
    h = size // 2
    t = np.arange(-h, h + 1, dtype=np.float64)
    k = np.exp(-(t**2) / (2.0 * sigma**2))
    return k / k.sum()


def gaussian_blur(img: np.ndarray, sigma: float, kernel_size: int | None = None) -> np.ndarray:
    """Blur an image (any dtype, ``HxW`` or ``HxWxC``) with a separable Gaussian, border reflect-101.

    Integer results are rounded half to even and clipped; the dtype is kept.
    """
    k = gaussian_kernel_1d(sigma, kernel_size)
    x = img.astype(np.float64)
    x = ndimage.correlate1d(x, k, axis=0, mode="mirror")
    x = ndimage.correlate1d(x, k, axis=1, mode="mirror")
    return to_dtype(x, img.dtype)


class DSModifier_blur(DSModifier_dir):  # noqa: N801
    """Gaussian blur, ``params = {"sigma": 1}`` (+ optional ``kernel_size``); name ``blur{sigma}_modifier``.

    ``kernel_size=7`` gives the original iquaflow kernel.
    """

    algo_version = 1
    #: Accepted parameters (``kernel_size`` must also be odd).
    PARAMS: ClassVar[dict[str, Param]] = {
        "sigma": Param("float", 0, None, low_open=True),
        "kernel_size": Param("int", 1, None),
    }

    def __init__(
        self, ds_modifier: DSModifier | None = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.params = {"sigma": 1, **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        gaussian_kernel_1d(float(self.params["sigma"]), self.params.get("kernel_size"))  # validate early
        self.name = f"blur{format_param_value(self.params['sigma'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return gaussian_blur(img, float(self.params["sigma"]), self.params.get("kernel_size"))
