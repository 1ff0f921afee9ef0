"""Checking modifier parameters: every name must be known and every value of the right type and in range.

A misspelt name (``qualty``) would otherwise be recorded in the run's params while the default is silently used,
and an out-of-range value (``quality=500``) would be clamped by a codec: both give results that look valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opsin.iq.errors import ModifierParamError

__all__ = ["ALWAYS_ALLOWED", "Param", "check_params"]


@dataclass(frozen=True)
class Param:
    """What one modifier parameter accepts.

    Attributes:
        kind: ``"int"``, ``"float"`` (ints accepted too) or ``"str"``.
        low: smallest allowed value (numbers), ``None`` = unbounded.
        high: largest allowed value (numbers), ``None`` = unbounded.
        low_open: ``low`` itself is excluded.
        high_open: ``high`` itself is excluded.
        derived: the modifier computes this value itself; a given value is accepted and replaced.
    """

    kind: str = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    derived: bool = False

    def describe(self) -> str:
        """The accepted range as text, e.g. ``1..100`` or ``(0, 1)``."""
        if self.kind == "str":
            return "a string"
        lo = "-inf" if self.low is None else _num(self.low)
        hi = "inf" if self.high is None else _num(self.high)
        if not self.low_open and not self.high_open and self.low is not None and self.high is not None:
            return f"{lo}..{hi}"
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}{')' if self.high_open else ']'}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or ``None`` when it is."""
        if self.derived:
            return None
        if self.kind == "str":
            return None if isinstance(value, str) else f"must be a string, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be {'an integer' if self.kind == 'int' else 'a number'}, got {value!r}"
        if self.kind == "int" and not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        x = float(value)
        if math.isnan(x):
            return "must be a number, got NaN"
        below = self.low is not None and (x <= self.low if self.low_open else x < self.low)
        above = self.high is not None and (x >= self.high if self.high_open else x > self.high)
        if below or above:
            return f"is out of range (allowed {self.describe()}), got {value!r}"
        return None


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


#: Names any modifier accepts: ``modifier`` (recomputed, present when params are copied from a logged run) and
#: ``seed`` (the random stream of ``DSModifier_dir.rng_for``).
ALWAYS_ALLOWED: Mapping[str, Param] = {"modifier": Param("str", derived=True), "seed": Param("int", low=0)}


def check_params(owner: str, params: Mapping[str, Any], spec: Mapping[str, Param]) -> None:
    """Raise when ``params`` holds an unknown name or a bad value.

    Args:
        owner: the modifier class name, used in the message.
        params: the merged parameters (defaults plus the caller's).
        spec: the modifier's own parameters (:data:`ALWAYS_ALLOWED` are added).

    Raises:
        ModifierParamError: (a ``ValueError``) naming the parameter, the value and what is accepted.
    """
    allowed = {**ALWAYS_ALLOWED, **spec}
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        msg = f"{owner}: unknown parameter {unknown[0]!r} (known: {known})"
        raise ModifierParamError(msg)
    for key, value in params.items():
        problem = allowed[key].problem(value)
        if problem is not None:
            msg = f"{owner}: parameter {key!r} {problem}"
            raise ModifierParamError(msg)
