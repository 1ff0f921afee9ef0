"""Small array helpers shared by the modifiers and metrics: dtype ranges and safe casting."""

from __future__ import annotations

import numpy as np

__all__ = ["dtype_max", "is_integer", "to_dtype"]


def is_integer(dtype: np.dtype | type) -> bool:
    """Tell whether ``dtype`` is an integer type (bool excluded)."""
    return bool(np.issubdtype(np.dtype(dtype), np.integer))


def dtype_max(dtype: np.dtype | type) -> float:
    """The largest value of an integer dtype, or ``inf`` for floats."""
    dt = np.dtype(dtype)
    if is_integer(dt):
        return float(np.iinfo(dt).max)
    return float("inf")


def to_dtype(values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Cast float values to ``dtype``: integers are rounded half to even, then clipped to the dtype range.

    Args:
        values: the array to cast (any numeric dtype).
        dtype: target dtype.

    Returns:
        A new array of ``dtype``. Floats are cast without rounding (NaN kept).
    """
    dt = np.dtype(dtype)
    if is_integer(dt):
        info = np.iinfo(dt)
        out = np.rint(np.asarray(values, dtype=np.float64))
        out = np.nan_to_num(out, nan=0.0, posinf=float(info.max), neginf=float(info.min))
        return np.clip(out, info.min, info.max).astype(dt)
    return np.asarray(values).astype(dt)
