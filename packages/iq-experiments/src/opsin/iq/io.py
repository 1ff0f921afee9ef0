"""Image input/output that keeps dtype, band count and TIFF georeferencing.

:func:`read_image` decodes with OpenCV (``IMREAD_UNCHANGED``: any dtype, any band count, colour in OpenCV's BGR
order) and falls back to tifffile for TIFFs OpenCV cannot read. For TIFFs the GeoTIFF/GDAL tags are read with
tifffile (metadata only) into :class:`ImageMeta`, and :func:`write_image` writes them back, so a modified GeoTIFF
keeps its CRS and transform.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile

from opsin.core import get_logger
from opsin.iq.errors import ImageReadError

__all__ = ["GEO_TAGS", "IMAGE_EXTENSIONS", "ImageMeta", "encode_jpeg", "read_image", "write_image"]

#: TIFF tags that carry georeferencing (GeoTIFF) and GDAL metadata/no-data values.
GEO_TAGS: tuple[int, ...] = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)
#: Image file extensions recognised in dataset folders (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

_TIFF_EXT = (".tif", ".tiff")
_JPEG_EXT = (".jpg", ".jpeg")


class _OnlyErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


_ONLY_ERRORS = _OnlyErrors()


@contextlib.contextmanager
def _quiet_tiff_warnings() -> Iterator[None]:
    """Hide libtiff's and tifffile's warnings about GeoTIFF tags while one file is decoded.

    libtiff (inside OpenCV) warns about every GeoTIFF tag it does not know, and tifffile about some tag values;
    those tags are read by tifffile on purpose. Only the duration of the call is affected: OpenCV's level is put
    back and the filter removed afterwards, so other users of these libraries keep their settings.
    """
    cv_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = None
    if cv_logging is not None:
        with contextlib.suppress(Exception):  # depends on the OpenCV build
            previous = cv_logging.getLogLevel()
            cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
    tiff_logger = get_logger("tifffile")
    tiff_logger.addFilter(_ONLY_ERRORS)
    try:
        yield
    finally:
        tiff_logger.removeFilter(_ONLY_ERRORS)
        if cv_logging is not None and previous is not None:
            with contextlib.suppress(Exception):
                cv_logging.setLogLevel(previous)


@dataclasses.dataclass
class ImageMeta:
    """What :func:`read_image` learnt about a file besides its pixels.

    Attributes:
        path: the file read.
        dtype: pixel dtype name (``"uint8"``, ``"uint16"``...).
        shape: array shape as returned (``(H, W)`` or ``(H, W, C)``).
        bgr: True when colour bands are in OpenCV's BGR(A) order (3 or 4 bands decoded by OpenCV).
        tags: TIFF tags of :data:`GEO_TAGS` present in the file, ``code -> (tiff datatype, count, value)``.
    """

    path: str = ""
    dtype: str = ""
    shape: tuple[int, ...] = ()
    bgr: bool = False
    tags: dict[int, tuple[int, int, Any]] = dataclasses.field(default_factory=dict)

    @property
    def is_georeferenced(self) -> bool:
        """True when the file carries a GeoTIFF transform (tags 34264, or 33550 with 33922)."""
        return 34264 in self.tags or (33550 in self.tags and 33922 in self.tags)

    def affine(self) -> tuple[float, float, float, float, float, float] | None:
        """The pixel-to-model affine ``(a, b, c, d, e, f)``: ``X = a*col + b*row + c``, ``Y = d*col + e*row + f``.

        Returns:
            The affine from tag 34264, or from 33550 + 33922, or None without georeferencing.
        """
        if 34264 in self.tags:
            m = [float(v) for v in self.tags[34264][2]]
            return (m[0], m[1], m[3], m[4], m[5], m[7])
        if 33550 in self.tags and 33922 in self.tags:
            sx, sy = (float(v) for v in self.tags[33550][2][:2])
            i, j, _k, x, y, _z = (float(v) for v in self.tags[33922][2][:6])
            return (sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy)
        return None


def _read_tiff_tags(path: str) -> dict[int, tuple[int, int, Any]]:
    tags: dict[int, tuple[int, int, Any]] = {}
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        for code in GEO_TAGS:
            tag = page.tags.get(code)  # type: ignore[union-attr]
            if tag is not None:
                value = tag.value
                if isinstance(value, bytes):
                    value = value.decode("latin-1")
                tags[code] = (int(tag.dtype), int(tag.count), value)
    return tags


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, ImageMeta]:
    """Read an image keeping its dtype and band count.

    Args:
        path: image file (``.jpg .jpeg .png .tif .tiff .bmp``).

    Returns:
        ``(array, meta)``: ``HxW`` or ``HxWxC`` array in the file's dtype (colour in BGR order when decoded by
        OpenCV), and the :class:`ImageMeta` with georeferencing tags for TIFFs.

    Raises:
        ImageReadError: the file is missing or cannot be decoded.
    """
    spath = os.fspath(path)
    if not os.path.isfile(spath):
        msg = f"cannot read image {spath}: no such file"
        raise ImageReadError(msg)
    is_tiff = spath.lower().endswith(_TIFF_EXT)
    tags: dict[int, tuple[int, int, Any]] = {}
    if not is_tiff:
        arr = cv2.imread(spath, cv2.IMREAD_UNCHANGED)
        by_opencv = arr is not None
    else:
        with _quiet_tiff_warnings():
            arr = cv2.imread(spath, cv2.IMREAD_UNCHANGED)
            by_opencv = arr is not None
            try:
                tags = _read_tiff_tags(spath)
                if arr is None:
                    arr = tifffile.imread(spath)
            except Exception as exc:
                msg = f"cannot read image {spath}: not a readable TIFF ({exc})"
                raise ImageReadError(msg) from exc
    # OpenCV decodes colour as BGR(A); the tifffile fallback keeps the file's band order
    bgr = by_opencv and arr is not None and arr.ndim == 3 and arr.shape[2] in (3, 4)
    if arr is None:
        msg = f"cannot read image {spath}: not a decodable image file"
        raise ImageReadError(msg)
    arr = np.asarray(arr)
    meta = ImageMeta(path=spath, dtype=arr.dtype.name, shape=tuple(arr.shape), bgr=bool(bgr), tags=tags)
    return arr, meta


def encode_jpeg(arr: np.ndarray, quality: int) -> bytes:
    """Encode a 1- or 3-band uint8 array (BGR) as a baseline JPEG with OpenCV.

    Args:
        arr: ``HxW``, ``HxWx1`` or ``HxWx3`` uint8.
        quality: JPEG quality 0-100.

    Returns:
        The JPEG bytes.

    Raises:
        ValueError: OpenCV refuses the array.
    """
    ok, buf = cv2.imencode(".jpg", arr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        msg = f"OpenCV could not JPEG-encode an array of shape {arr.shape} and dtype {arr.dtype}"
        raise ValueError(msg)
    return bytes(buf.tobytes())


def write_image(
    path: str | os.PathLike[str],
    arr: np.ndarray,
    meta: ImageMeta | None = None,
    *,
    jpeg_quality: int = 95,
) -> None:
    """Write an image in the format of its extension.

    TIFFs are written with tifffile (uncompressed) with the georeferencing tags of ``meta`` copied; JPEGs at
    ``jpeg_quality``; PNG and BMP losslessly with OpenCV. Colour arrays are taken to be in BGR order unless
    ``meta.bgr`` is False (a TIFF read through tifffile keeps its file band order).

    Args:
        path: destination file; its extension chooses the format.
        arr: pixels.
        meta: metadata from :func:`read_image` (tags and band order), or None.
        jpeg_quality: JPEG quality for ``.jpg``/``.jpeg`` outputs.

    Raises:
        OSError: the file cannot be written.
    """
    spath = os.fspath(path)
    ext = Path(spath).suffix.lower()
    arr = np.asarray(arr)
    bgr = True if meta is None else meta.bgr
    if ext in _TIFF_EXT:
        data = arr
        colour = data.ndim == 3 and data.shape[2] in (3, 4)
        if colour and bgr:
            data = data[..., [2, 1, 0, 3][: data.shape[2]]]
        extratags = []
        for code, (dtype, count, value) in sorted((meta.tags if meta else {}).items()):
            extratags.append((code, dtype, count, value, True))
        tifffile.imwrite(
            spath,
            np.ascontiguousarray(data),
            photometric="rgb" if colour and data.shape[2] in (3, 4) and data.dtype == np.uint8 else "minisblack",
            planarconfig="contig" if data.ndim == 3 else None,
            extrasamples=[2] if colour and data.shape[2] == 4 and data.dtype == np.uint8 else None,
            extratags=extratags,
            metadata=None,
        )
        return
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)] if ext in _JPEG_EXT else []
    if not cv2.imwrite(spath, arr, params):
        msg = f"cannot write image {spath}: OpenCV refused an array of shape {arr.shape} and dtype {arr.dtype}"
        raise OSError(msg)
