"""The curves fitted to an edge: logistic and Gaussian-blurred-step edge models, and a Gaussian line spread.

Each model comes as a plain function (the public ``model_esf``, ``model_esf_erf``, ``gaussian``), as its
column-wise Jacobian for the single-edge optimiser, and as a batched version returning values and Jacobian for
many edges at once (rows of ``x``, one parameter vector per row) for :func:`opsin.iq.metrics._fit.fit_batch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "JACOBIANS",
    "gaussian",
    "gaussian_batch",
    "logistic_batch",
    "model_esf",
    "model_esf_erf",
]

_SQRT2 = math.sqrt(2.0)


def model_esf(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Logistic edge model ``a / (1 + exp((x - b) / c)) + d``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return a / (1.0 + np.exp((x - b) / c)) + d


def model_esf_erf(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Gaussian-blurred step ``a * Phi((x - b) / c) + d``."""
    return a * 0.5 * (1.0 + special.erf((x - b) / (c * _SQRT2))) + d


def gaussian(x: np.ndarray, a: float, x0: float, sigma: float) -> np.ndarray:
    """``a * exp(-(x - x0)^2 / (2 sigma^2))``."""
    return a * np.exp(-((x - x0) ** 2) / (2.0 * sigma**2))


def _model_esf_jacobian(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Column-wise Jacobian ``(4, n)`` of :func:`model_esf`."""
    out = np.empty((4, x.size))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        e = np.exp((x - b) / c)
        q = 1.0 / (1.0 + e)
        dq = -(q * q) * e  # derivative of q with respect to (x - b) / c
        out[0] = q
        out[1] = -a * dq / c
        out[2] = out[1] * (x - b) / c
    out[3] = 1.0
    return out


def _gaussian_jacobian(x: np.ndarray, a: float, x0: float, sigma: float) -> np.ndarray:
    """Column-wise Jacobian ``(3, n)`` of :func:`gaussian`."""
    out = np.empty((3, x.size))
    u = x - x0
    g = np.exp(-(u * u) / (2.0 * sigma * sigma))
    out[0] = g
    out[1] = a * g * u / (sigma * sigma)
    out[2] = out[1] * u / sigma
    return out


#: Analytic Jacobians of the models that have one (the optimiser differentiates the others numerically).
JACOBIANS: dict[Callable[..., Any], Callable[..., np.ndarray]] = {
    model_esf: _model_esf_jacobian,
    gaussian: _gaussian_jacobian,
}


def gaussian_batch(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gaussian` and its Jacobian for rows ``x`` ``(B, N)`` and parameters ``(B, 3)``."""
    a, x0, s = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    u = x - x0
    g = np.exp(-(u * u) / (2.0 * s * s))
    jac = np.empty((*x.shape, 3))
    jac[..., 0] = g
    jac[..., 1] = a * g * u / (s * s)
    jac[..., 2] = jac[..., 1] * u / s
    return a * g, jac


def logistic_batch(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`model_esf` and its Jacobian for rows ``x`` ``(B, N)`` and parameters ``(B, 4)``."""
    a, b, c, d = p[:, 0:1], p[:, 1:2], p[:, 2:3], p[:, 3:4]
    z = (x - b) / c
    q = special.expit(-z)
    jac = np.empty((*x.shape, 4))
    jac[..., 0] = q
    jac[..., 1] = a * q * (1.0 - q) / c
    jac[..., 2] = jac[..., 1] * z
    jac[..., 3] = 1.0
    return a * q + d, jac
