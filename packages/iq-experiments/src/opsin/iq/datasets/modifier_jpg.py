"""``DSModifier_jpg``: JPEG compression at a given quality, for any dtype and band count."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import cv2
import numpy as np

from opsin.core import atomic_write_bytes
from opsin.iq._arrays import to_dtype
from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value
from opsin.iq.io import encode_jpeg, read_image, write_image

__all__ = ["DSModifier_jpg", "jpeg_roundtrip"]


def _roundtrip_uint8(img: np.ndarray, quality: int) -> tuple[np.ndarray, bytes | None]:
    bands = 1 if img.ndim == 2 else img.shape[2]
    if bands in (1, 3):
        data = encode_jpeg(img, quality)
        dec = np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
        return dec.reshape(img.shape), data
    out = np.empty_like(img)
    for b in range(bands):
        data = encode_jpeg(np.ascontiguousarray(img[..., b]), quality)
        out[..., b] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return out, None


def jpeg_roundtrip(img: np.ndarray, quality: int) -> tuple[np.ndarray, bytes | None]:
    """Compress and decompress an image with OpenCV's baseline JPEG.

    1- and 3-band uint8 images are encoded as one JPEG; other band counts band by band as greyscale JPEGs. Other
    dtypes are mapped per image from ``[min, max]`` to ``[0, 255]``, rounded, compressed, and mapped back (this
    includes a requantisation to 256 levels).

    Args:
        img: ``HxW`` or ``HxWxC`` array of any numeric dtype.
        quality: JPEG quality 0-100.

    Returns:
        ``(decoded image of the input dtype and shape, JPEG bytes or None)``; the bytes are returned only when the
        image was encoded as a single uint8 JPEG (so a ``.jpg`` output can be written without re-encoding).
    """
    if img.dtype == np.uint8:
        return _roundtrip_uint8(img, quality)
    x = img.astype(np.float64)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if hi <= lo:
        return img.copy(), None
    scaled = to_dtype((x - lo) / (hi - lo) * 255.0, np.uint8)
    dec, _ = _roundtrip_uint8(scaled, quality)
    back = dec.astype(np.float64) / 255.0 * (hi - lo) + lo
    return to_dtype(back, img.dtype), None


class DSModifier_jpg(DSModifier_dir):  # noqa: N801
    """JPEG compression at ``params["quality"]`` (default 65); name ``jpg{quality}_modifier``.

    When the output file is a JPEG the encoded bytes are written as they are (no second compression).

    Args:
        ds_modifier: a modifier applied first.
        params: ``{"quality": int}``.
        **kwargs: :class:`DSModifier` options (``output_root``, ``n_jobs``, ``output_jpeg_quality``).
    """

    algo_version = 1
    #: Accepted parameters: JPEG quality as OpenCV takes it.
    PARAMS: ClassVar[dict[str, Param]] = {"quality": Param("int", 1, 100)}

    def __init__(
        self, ds_modifier: DSModifier | None = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.params = {"quality": 65, **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        self.name = f"jpg{format_param_value(self.params['quality'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return jpeg_roundtrip(img, int(self.params["quality"]))[0]

    def _mod_file(self, src: str, dst: str, rel: str) -> None:
        img, meta = read_image(src)
        self._current_rel = rel
        out, data = jpeg_roundtrip(img, int(self.params["quality"]))
        if data is not None and os.path.splitext(dst)[1].lower() in (".jpg", ".jpeg"):
            atomic_write_bytes(dst, data)
        else:
            write_image(dst, out, meta, jpeg_quality=self.output_jpeg_quality)
