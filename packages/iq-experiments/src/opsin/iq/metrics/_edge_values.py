"""What one accepted edge yields: RER, FWHM and MTF at Nyquist and half Nyquist, from its fitted curves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import interpolate

__all__ = ["EdgeResult", "fwhm_from_lsf", "mtf_from_lsf", "mtf_nyquist", "rer_from_esf"]

#: Sample spacing (px) of the ESF and LSF grids.
GRID_STEP = 0.1


@dataclass(frozen=True)
class EdgeResult:
    """The sharpness values of one accepted edge (None where that value could not be derived).

    Attributes:
        rer: relative edge response, ``f(x50 + 0.5) - f(x50 - 0.5)`` on the normalised edge.
        fwhm: full width at half maximum of the line spread function, px.
        mtf_nyq: modulation transfer at 0.5 cycles/px.
        mtf_half_nyq: modulation transfer at 0.25 cycles/px.
        mtf_curve: ``(frequencies, mtf)`` below 1.5 cycles/px, when asked for.
        sigma: the Gaussian PSF width of the ``erf`` model, px.
    """

    rer: float
    fwhm: float | None = None
    mtf_nyq: float | None = None
    mtf_half_nyq: float | None = None
    mtf_curve: tuple[np.ndarray, np.ndarray] | None = None
    sigma: float | None = None

    def value(self, metric: str) -> float | None:
        """The value reported under ``metric`` (``RER``, ``FWHM``, ``MTF_NYQ``, ``MTF_halfNYQ``)."""
        return {"RER": self.rer, "FWHM": self.fwhm, "MTF_NYQ": self.mtf_nyq, "MTF_halfNYQ": self.mtf_half_nyq}[metric]


def rer_from_esf(edge: Callable[[np.ndarray], np.ndarray], xs: np.ndarray) -> float:
    """RER of a normalised edge model: its rise over one pixel centred where it is nearest 0.5 on ``xs``."""
    x50 = xs[int(np.argmin(np.abs(edge(xs) - 0.5)))]
    return float(edge(np.array([x50 + 0.5]))[0] - edge(np.array([x50 - 0.5]))[0])


def fwhm_from_lsf(lsf: np.ndarray) -> float | None:
    """FWHM (px) of a line spread function sampled every 0.1 px: the two roots of an interpolating spline.

    Returns:
        None unless the spline of ``lsf - max / 2`` has exactly two roots.
    """
    if lsf.size < 5:
        return None
    index = np.arange(lsf.size, dtype=np.float64)
    try:
        roots = interpolate.UnivariateSpline(index, lsf - lsf.max() / 2.0, s=0).roots()
    except Exception:  # FITPACK rejects degenerate input in several ways; the edge then has no FWHM
        return None
    if len(roots) != 2:
        return None
    return float(abs(roots[1] - roots[0]) * GRID_STEP)


def mtf_from_lsf(lsf: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The MTF of a line spread function sampled every 0.1 px, below 1.5 cycles/px.

    ``|FFT| * 2 / N`` over the non-negative frequencies, normalised by its zero-frequency value (no window, no
    correction for the sampling): the original's definition.

    Returns:
        ``(frequencies, mtf)``, or None when the LSF is too short or carries nothing.
    """
    n = lsf.size
    if n < 8:
        return None
    magnitude = np.abs(np.fft.fft(lsf))[: n // 2] * 2.0 / n
    if magnitude[0] <= 0:
        return None
    freqs = np.fft.fftfreq(n, GRID_STEP)[: n // 2]
    below = freqs < 1.5
    return freqs[below], magnitude[below] / magnitude[0]


def mtf_nyquist(curve: tuple[np.ndarray, np.ndarray] | None) -> tuple[float | None, float | None]:
    """The MTF at Nyquist (0.5 cycles/px) and half Nyquist, from a not-a-knot cubic spline through ``curve``."""
    if curve is None or curve[0].size < 2:
        return None, None
    spline = interpolate.CubicSpline(curve[0], curve[1])
    return float(spline(0.5)), float(spline(0.25))
