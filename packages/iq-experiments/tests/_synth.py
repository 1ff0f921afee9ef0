"""Synthetic ground-truth images for the metric and modifier tests: Gaussian-blurred edges and noisy flat fields."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def edge_image(
    sigma: float, *, size: int = 256, half: float = 70.0, angle: float = 5.0, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """A square of half-side ``half`` tilted by ``angle`` degrees, ``50 + 150 Phi(d / sigma)`` point-sampled."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2.0
    th = np.deg2rad(angle)
    u = (xx - c) * np.cos(th) + (yy - c) * np.sin(th)
    v = -(xx - c) * np.sin(th) + (yy - c) * np.cos(th)
    d = half - np.maximum(np.abs(u), np.abs(v))
    img = 50.0 + 150.0 * ndtr(d / sigma)
    if noise:
        img = img + np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def flat_field(mean: float, noise: float, *, size: int = 256, seed: int = 0) -> np.ndarray:
    """``mean + N(0, noise)`` rounded to uint8."""
    img = mean + np.random.default_rng(seed).normal(0.0, noise, (size, size))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
