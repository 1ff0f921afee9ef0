"""Measuring many edge patches: group them by shape, find their edge lines, run the chosen ESF model."""

from __future__ import annotations

import math

import numpy as np

from opsin.iq.metrics._edge_values import EdgeResult
from opsin.iq.metrics._erf_edge import measure_erf
from opsin.iq.metrics._esf_profile import EdgeLine, edge_lines, esf_profiles
from opsin.iq.metrics._logistic_edges import measure_logistic

__all__ = ["ESF_MODELS", "measure_edges"]

#: ``logistic``: the original's method and numbers; ``erf``: accurate for Gaussian point spread functions.
ESF_MODELS = ("logistic", "erf")


def _intercept_gate(line: EdgeLine | None) -> EdgeLine | None:
    # The original meant to reject edges tilted more than 15 degrees but tested the intercept, not the slope:
    # in effect "edge column at the first inner row >= 3.73". Kept, as its numbers depend on it.
    if line is None or abs(90.0 - math.degrees(math.atan(line.intercept))) > 15:
        return None
    return line


def measure_edges(
    patches: list[np.ndarray],
    *,
    r2_threshold: float = 0.995,
    snr_threshold: float = 50.0,
    esf_model: str = "logistic",
    want_mtf_curve: bool = False,
) -> list[EdgeResult | None]:
    """Measure oriented edge patches (edge along the rows, profile along the columns).

    Args:
        patches: the patches, any mix of shapes.
        r2_threshold: minimum R^2 of the normalised edge fit.
        snr_threshold: minimum edge SNR.
        esf_model: one of :data:`ESF_MODELS`.
        want_mtf_curve: keep each edge's MTF curve (logistic model).

    Returns:
        Per patch its :class:`EdgeResult`, or None when a gate rejects it.
    """
    out: list[EdgeResult | None] = [None] * len(patches)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, patch in enumerate(patches):
        by_shape.setdefault(patch.shape, []).append(i)
    for shape, members in by_shape.items():
        stack = np.stack([patches[i] for i in members]).astype(np.float64, copy=False)
        lines = edge_lines(stack)
        if esf_model == "erf":
            for k, i in enumerate(members):
                line = lines[k]
                if line is not None:
                    out[i] = measure_erf(stack[k], line, r2_threshold, snr_threshold)
            continue
        profiles = esf_profiles(stack, [_intercept_gate(line) for line in lines])
        found = [(i, p) for i, p in zip(members, profiles, strict=True) if p is not None]
        results = measure_logistic(
            [p for _i, p in found],
            shape[1],
            r2_threshold=r2_threshold,
            snr_threshold=snr_threshold,
            want_mtf_curve=want_mtf_curve,
        )
        for (i, _p), res in zip(found, results, strict=True):
            out[i] = res
    return out
