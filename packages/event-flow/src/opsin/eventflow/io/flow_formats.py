"""Exchange formats of single flow fields: Middlebury ``.flo``, DSEC 16-bit PNG and ``.npy``.

All functions take or return (2, H, W) float32 arrays in pixels, u first; invalid pixels are +inf.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opsin.core import atomic_write_bytes
from opsin.eventflow.errors import ConfigError, FormatError

__all__ = ["FLO_MAGIC", "read_dsec_png", "read_flo", "read_flow_npy", "write_dsec_png", "write_flo", "write_flow_npy"]

FLO_MAGIC = 202021.25


def _check(flow: np.ndarray, path: object) -> np.ndarray:
    arr = np.asarray(flow, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != 2:
        message = f"{path}: flow must have shape (2, H, W), got {arr.shape}"
        raise ConfigError(message)
    return arr


def write_flo(path: str | Path, flow: np.ndarray) -> Path:
    """Writes a Middlebury ``.flo`` file: float32 magic, int32 W, int32 H, then (u, v) interleaved row-major."""
    arr = _check(flow, path)
    h, w = arr.shape[1:]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    return atomic_write_bytes(path, header + np.ascontiguousarray(arr.transpose(1, 2, 0), dtype="<f4").tobytes())


def read_flo(path: str | Path) -> np.ndarray:
    """Reads a Middlebury ``.flo`` file.

    Raises:
        FormatError: wrong magic number or a size that does not match W x H.
    """
    data = Path(path).read_bytes()
    if len(data) < 12 or np.frombuffer(data, "<f4", 1)[0] != np.float32(FLO_MAGIC):
        raise FormatError(path, 0, "missing the .flo magic number 202021.25")
    w, h = (int(v) for v in np.frombuffer(data, "<i4", 2, offset=4))
    expected = 12 + 8 * w * h
    if w <= 0 or h <= 0 or len(data) != expected:
        raise FormatError(
            path, min(len(data), expected), f"{len(data)} bytes for a {w}x{h} field ({expected} expected)"
        )
    return np.frombuffer(data, "<f4", offset=12).reshape(h, w, 2).transpose(2, 0, 1).astype(np.float32)


def write_dsec_png(path: str | Path, flow: np.ndarray) -> Path:
    """Writes a DSEC flow PNG: 16-bit RGB with u = (R - 2**15) / 128, v = (G - 2**15) / 128, valid = B > 0."""
    import cv2

    arr = _check(flow, path)
    valid = np.isfinite(arr).all(axis=0)
    rgb = np.zeros((*arr.shape[1:], 3), np.uint16)
    for c in range(2):
        scaled = np.where(valid, np.round(arr[c] * 128 + 2**15), 0)
        rgb[..., c] = np.clip(scaled, 0, 2**16 - 1).astype(np.uint16)
    rgb[..., 2] = valid
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    if not ok:
        message = f"{path}: OpenCV could not encode the PNG"
        raise ConfigError(message)
    return atomic_write_bytes(path, buf.tobytes())


def read_dsec_png(path: str | Path) -> np.ndarray:
    """Reads a DSEC flow PNG (OpenCV's BGR order reversed); pixels with B = 0 are +inf.

    Raises:
        FormatError: not a 16-bit 3-channel PNG.
    """
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint16 or img.ndim != 3 or img.shape[2] != 3:
        raise FormatError(path, None, "not a 16-bit, 3-channel DSEC flow PNG")
    rgb = img[..., ::-1].astype(np.float64)
    flow = np.stack([(rgb[..., 0] - 2**15) / 128, (rgb[..., 1] - 2**15) / 128]).astype(np.float32)
    flow[:, rgb[..., 2] == 0] = np.inf
    return flow


def write_flow_npy(path: str | Path, flow: np.ndarray) -> Path:
    """Writes a (2, H, W) float32 ``.npy`` file."""
    import io

    arr = _check(flow, path)
    buf = io.BytesIO()
    np.save(buf, arr)
    return atomic_write_bytes(path, buf.getvalue())


def read_flow_npy(path: str | Path) -> np.ndarray:
    """Reads a (2, H, W) ``.npy`` flow.

    Raises:
        FormatError: unreadable, or not of shape (2, H, W).
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise FormatError(path, None, f"not a readable .npy array ({exc})") from exc
    if arr.ndim != 3 or arr.shape[0] != 2:
        raise FormatError(path, None, f"flow .npy must be (2, H, W), got {arr.shape}")
    return arr.astype(np.float32)
