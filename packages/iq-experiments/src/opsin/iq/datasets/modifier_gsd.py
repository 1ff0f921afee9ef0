"""``DSModifier_gsd``: simulate a coarser ground sampling distance (down- then up-sampling)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from PIL import Image

from opsin.iq._arrays import to_dtype
from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value

__all__ = ["DSModifier_gsd", "INTERPOLATIONS", "resample_gsd"]

#: Interpolation codes accepted by ``params["interpolation"]`` (Pillow's filters).
INTERPOLATIONS: dict[int, str] = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def resample_gsd(img: np.ndarray, scale: float, interpolation: int = 2) -> np.ndarray:
    """Resample every band to ``(int(H/scale), int(W/scale))`` and back to ``(H, W)`` (Pillow, float32).

    Args:
        img: ``HxW`` or ``HxWxC`` array, any dtype.
        scale: GSD factor (> 0; 2 halves the resolution).
        interpolation: a key of :data:`INTERPOLATIONS`.

    Returns:
        Same shape and dtype.

    Raises:
        ValueError: bad scale or interpolation code, or an image that would shrink to nothing.
    """
    if int(interpolation) not in INTERPOLATIONS:
        msg = f"gsd interpolation must be one of {INTERPOLATIONS}, got {interpolation}"
        raise ValueError(msg)
    if not scale > 0:
        msg = f"gsd scale must be > 0, got {scale}"
        raise ValueError(msg)
    h, w = img.shape[:2]
    h2, w2 = int(h / scale), int(w / scale)
    if h2 < 1 or w2 < 1:
        msg = f"gsd scale {scale} shrinks a {h}x{w} image to nothing"
        raise ValueError(msg)
    resample = Image.Resampling(int(interpolation))
    bands = img[..., None] if img.ndim == 2 else img
    out = np.empty(bands.shape, dtype=np.float32)
    for b in range(bands.shape[2]):
        pil = Image.fromarray(np.ascontiguousarray(bands[..., b], dtype=np.float32), mode="F")
        small = pil.resize((w2, h2), resample=resample)
        out[..., b] = np.asarray(small.resize((w, h), resample=resample), dtype=np.float32)
    res = out[..., 0] if img.ndim == 2 else out
    return to_dtype(res.astype(np.float64), img.dtype)


class DSModifier_gsd(DSModifier_dir):  # noqa: N801
    """GSD degradation, ``params = {"scale": 1.0, "interpolation": 2, "resol": 0.3}``; adds ``gsd = resol*scale``.

    Name ``gsd{gsd}_modifier`` (``scale=2`` at ``resol=0.3`` -> ``gsd0.6_modifier``).
    """

    algo_version = 1
    #: Accepted parameters (``gsd`` is derived: ``resol * scale``).
    PARAMS: ClassVar[dict[str, Param]] = {
        "scale": Param("float", 0, None, low_open=True),
        "interpolation": Param("int", 0, 5),
        "resol": Param("float", 0, None, low_open=True),
        "gsd": Param(derived=True),
    }

    def __init__(
        self, ds_modifier: DSModifier | None = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.params = {"scale": 1.0, "interpolation": 2, "resol": 0.3, **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        self.params["gsd"] = float(self.params["resol"]) * float(self.params["scale"])
        self.name = f"gsd{format_param_value(self.params['gsd'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return resample_gsd(img, float(self.params["scale"]), int(self.params["interpolation"]))
