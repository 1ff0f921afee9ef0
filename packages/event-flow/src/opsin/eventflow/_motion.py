"""Planar motions with closed-form homographies H(t) mapping texture coordinates onto image coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AffineMotion", "HomographyMotion", "Motion", "PiecewiseMotion", "centring", "translation"]


def translation(tx: float, ty: float) -> np.ndarray:
    """3x3 translation."""
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def centring(texture_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """The translation putting the texture's centre on the image centre (pixel centres at integers)."""
    (th, tw), (ih, iw) = texture_hw, image_hw
    return translation((iw - 1) / 2 - (tw - 1) / 2, (ih - 1) / 2 - (th - 1) / 2)


@dataclass
class Motion:
    """Base class: ``matrix(t_us)`` is H(t) = M(t) @ placement (texture -> image), ``time_scale`` slows it down.

    Attributes:
        image_hw: (height, width) of the image.
        placement: H(0) of the static part (texture -> image).
        time_scale: the trajectory is evaluated at ``time_scale * t``.
    """

    image_hw: tuple[int, int]
    placement: np.ndarray = field(default_factory=lambda: np.eye(3))
    time_scale: float = 1.0

    def _motion(self, t_s: float) -> np.ndarray:
        raise NotImplementedError

    def matrix(self, t_us: float) -> np.ndarray:
        """H(t) at ``t_us`` microseconds (float64 3x3)."""
        return self._motion(self.time_scale * t_us * 1e-6) @ self.placement

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters of the trajectory."""
        return {"type": type(self).__name__, "time_scale": self.time_scale}


@dataclass
class AffineMotion(Motion):
    """Translation ``velocity`` (px/s), rotation rate ``omega`` (rad/s) and log-scale rate (1/s) about the centre.

    H(t) = C R(omega t) S(exp(scale_rate t)) C^-1 T(velocity t) placement, C = translation to the image centre.
    """

    velocity: tuple[float, float] = (0.0, 0.0)
    omega: float = 0.0
    scale_rate: float = 0.0

    def _motion(self, t_s: float) -> np.ndarray:
        h, w = self.image_hw
        cx, cy = (w - 1) / 2, (h - 1) / 2
        angle, scale = self.omega * t_s, math.exp(self.scale_rate * t_s)
        c, s = math.cos(angle), math.sin(angle)
        rs = np.array([[scale * c, -scale * s, 0.0], [scale * s, scale * c, 0.0], [0.0, 0.0, 1.0]])
        shift = translation(self.velocity[0] * t_s, self.velocity[1] * t_s)
        return translation(cx, cy) @ rs @ translation(-cx, -cy) @ shift

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters."""
        return {
            **super().describe(),
            "velocity": list(self.velocity),
            "omega": self.omega,
            "scale_rate": self.scale_rate,
        }


def _rodrigues(rvec: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(rvec))
    if theta < 1e-15:
        return np.eye(3)
    k = rvec / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * (kx @ kx)


@dataclass
class HomographyMotion(Motion):
    """A plane seen by a moving camera.

    The plane has normal ``normal`` at depth ``depth``; the camera rotates at ``omega`` (rad/s, axis-angle rate) and
    translates at ``velocity`` (depth units/s): H(t) = K (R(t) - tau(t) n^T / d) K^-1 placement.
    """

    omega: tuple[float, float, float] = (0.0, 0.0, 0.0)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    depth: float = 2.0
    focal: float = 0.0

    def _motion(self, t_s: float) -> np.ndarray:
        h, w = self.image_hw
        f = self.focal or float(w)
        k = np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])
        rot = _rodrigues(np.asarray(self.omega) * t_s)
        tau = np.asarray(self.velocity, dtype=np.float64)[:, None] * t_s
        n = np.asarray(self.normal, dtype=np.float64)[None, :]
        return k @ (rot - tau @ n / self.depth) @ np.linalg.inv(k)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters."""
        return {
            **super().describe(),
            "omega": list(self.omega),
            "velocity": list(self.velocity),
            "normal": list(self.normal),
            "depth": self.depth,
            "focal": self.focal,
        }


@dataclass
class PiecewiseMotion(Motion):
    """Constant-velocity translation segments of ``segment_s`` seconds joined by cosine ramps of ``ramp_s``."""

    velocities: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 0.0)])
    segment_s: float = 0.1
    ramp_s: float = 0.03

    def _position(self, t_s: float) -> np.ndarray:
        v = [np.asarray(vel, dtype=np.float64) for vel in self.velocities]
        pos = np.zeros(2)
        i = 0
        remaining = t_s
        while True:
            prev = v[max(i - 1, 0)]
            cur = v[min(i, len(v) - 1)]
            seg = self.segment_s if i < len(v) - 1 else math.inf
            tau = min(remaining, seg)
            ramp = self.ramp_s if i > 0 else 0.0
            if ramp > 0 and tau <= ramp:
                pos += prev * tau + (cur - prev) * (tau / 2 - ramp * math.sin(math.pi * tau / ramp) / (2 * math.pi))
            else:
                pos += prev * ramp + (cur - prev) * ramp / 2 + cur * (tau - ramp)
            remaining -= tau
            if remaining <= 0:
                return pos
            i += 1

    def _motion(self, t_s: float) -> np.ndarray:
        px, py = self._position(t_s)
        return translation(px, py)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters."""
        return {
            **super().describe(),
            "velocities": [list(v) for v in self.velocities],
            "segment_s": self.segment_s,
            "ramp_s": self.ramp_s,
        }
