"""Training augmentation: one geometric transform per chunk, identical for all its bins, labels following."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["ChunkAugmentation", "augmentation_seed", "rotate_flip_features", "rotate_flip_flow"]

_CV_MAX_CHANNELS = 256


def augmentation_seed(path: str, chunk_start: int, epoch: int, seed: int) -> int:
    """``zlib.crc32(f"{path}|{chunk_start}|{epoch}|{seed}")``: stable across processes (no salted ``hash()``)."""
    return zlib.crc32(f"{path}|{chunk_start}|{epoch}|{seed}".encode())


def _rotation(height: int, width: int, angle_deg: float) -> np.ndarray:
    return cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle_deg, 1.0)


def rotate_flip_features(array: np.ndarray, angle_deg: float | None, flip: bool) -> np.ndarray:
    """Rotates (..., H, W) planes about the centre (bilinear, zero fill), then flips them horizontally if asked."""
    if angle_deg is None and not flip:
        return array
    lead, (h, w) = array.shape[:-2], array.shape[-2:]
    planes = np.ascontiguousarray(array.reshape(-1, h, w).transpose(1, 2, 0), dtype=np.float32)
    if angle_deg is not None:
        m = _rotation(h, w, angle_deg)
        parts = [
            cv2.warpAffine(
                np.ascontiguousarray(planes[..., i : i + _CV_MAX_CHANNELS]),
                m,
                (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            for i in range(0, planes.shape[2], _CV_MAX_CHANNELS)
        ]
        parts = [p[..., None] if p.ndim == 2 else p for p in parts]
        planes = np.concatenate(parts, axis=2)
    if flip:
        planes = planes[:, ::-1]
    return np.ascontiguousarray(planes.transpose(2, 0, 1)).reshape(*lead, h, w)


def rotate_flip_flow(flow: np.ndarray, angle_deg: float | None, flip: bool) -> np.ndarray:
    """Transforms a (2, H, W) flow field like its features.

    The field is resampled (nearest, +inf outside), the vectors rotated, and u negated on flip.
    """
    out = np.asarray(flow, dtype=np.float32)
    h, w = out.shape[-2:]
    if angle_deg is not None:
        m = _rotation(h, w, angle_deg)
        field = cv2.warpAffine(
            np.ascontiguousarray(out.transpose(1, 2, 0)),
            m,
            (w, h),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(np.inf, np.inf, np.inf, np.inf),
        )
        u, v = field[..., 0].astype(np.float64), field[..., 1].astype(np.float64)
        lin = m[:, :2]
        with np.errstate(invalid="ignore"):
            out = np.stack([lin[0, 0] * u + lin[0, 1] * v, lin[1, 0] * u + lin[1, 1] * v]).astype(np.float32)
        bad = ~np.isfinite(field).all(axis=2)
        out[:, bad] = np.inf
    if flip:
        out = out[:, :, ::-1].copy()
        out[0] = -out[0]
        out[0][~np.isfinite(out[1])] = np.inf
    return out


@dataclass
class ChunkAugmentation:
    """The training augmentation policy (one draw per chunk).

    With probability ``p_rotate`` a rotation by U[-max_angle, max_angle] degrees about the centre, then a horizontal
    flip with probability ``p_flip``. Draws depend only on the seed given.
    """

    p_rotate: float = 0.75
    max_angle: float = 90.0
    p_flip: float = 0.5

    def draw(self, seed: int) -> tuple[float | None, bool]:
        """(angle in degrees or None, flip) for this seed."""
        gen = np.random.default_rng(seed)
        rotate = gen.random() < self.p_rotate
        angle = float(gen.uniform(-self.max_angle, self.max_angle))
        flip = bool(gen.random() < self.p_flip)
        return (angle if rotate else None), flip

    def __call__(
        self, inputs: np.ndarray, labels: list[np.ndarray | None], seed: int
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Applies one transform to (T, C, H, W) inputs and to each (2, H_l, W_l) label (None = unlabelled)."""
        angle, flip = self.draw(seed)
        out = rotate_flip_features(inputs, angle, flip)
        new_labels = [None if lab is None else rotate_flip_flow(lab, angle, flip) for lab in labels]
        return out, new_labels
