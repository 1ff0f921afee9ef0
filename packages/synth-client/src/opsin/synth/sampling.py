"""Generator-agnostic parameter filling and sampling.

:func:`random_job` draws every parameter independently from its schema options; :func:`sample_input` validates a
user's overrides and draws the rest. Generator-aware samplers (VisionFit's joint rules live in
:mod:`opsin.synth.visionfit.sampling`) build on :func:`check_overrides` and :func:`finish_sample`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opsin.synth._validation import normalize_job_params, validate_job_param_dict
from opsin.synth.errors import ParameterValidationError

__all__ = [
    "ParameterInfo",
    "RandomLike",
    "check_overrides",
    "default_job",
    "finish_sample",
    "random_job",
    "random_value",
    "resolve_rng",
    "sample_input",
]

ParameterInfo = Mapping[str, Mapping[str, Any]]


class RandomLike(Protocol):
    """What the samplers use of ``random.Random`` (the ``random`` module itself also fits)."""

    def random(self) -> float: ...  # noqa: D102

    def uniform(self, a: float, b: float) -> float: ...  # noqa: D102

    def randint(self, a: int, b: int) -> int: ...  # noqa: D102

    def choice(self, seq: Sequence[Any]) -> Any: ...  # noqa: D102

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float: ...  # noqa: D102


def resolve_rng(rng: RandomLike | None) -> RandomLike:
    """``rng`` when given, else the ``random`` module (so ``random.seed()`` makes draws reproducible)."""
    return rng if rng is not None else random


def default_job(parameter_info: ParameterInfo) -> dict[str, Any]:
    """``{name: default_value}`` for every parameter, in schema order (``state: None`` included)."""
    return {name: info.get("default_value") for name, info in parameter_info.items()}


def _options(info: Mapping[str, Any]) -> Mapping[str, Any]:
    options = info.get("options")
    return options if isinstance(options, Mapping) else {}


def random_value(info: Mapping[str, Any], rng: RandomLike | None = None) -> Any:
    """One uniform draw for a parameter: a choice, an inclusive integer, a real, else its default."""
    r = resolve_rng(rng)
    options = _options(info)
    kind = info.get("type")
    choices = options.get("choices")
    if choices:
        return r.choice(list(choices))
    low, high = options.get("min"), options.get("max")
    if low is not None and high is not None:
        if kind == "int":
            return r.randint(int(low), int(high))
        if kind == "float":
            return r.uniform(float(low), float(high))
    return info.get("default_value")


def random_job(parameter_info: ParameterInfo, rng: RandomLike | None = None) -> dict[str, Any]:
    """Draw every parameter independently (``Session.random_job``); bools, uuids and unbounded ones keep defaults."""
    return {name: random_value(info, rng) for name, info in parameter_info.items()}


def _range_text(options: Mapping[str, Any]) -> str:
    return f"[{options.get('min')}, {options.get('max')}]"


def check_overrides(parameter_info: ParameterInfo, overrides: Mapping[str, Any]) -> None:
    """Validate user overrides for a sampler.

    Raises:
        ParameterValidationError: an unknown key, a value of the wrong type, out of range
            (``"`num_reps` (25) must be in range [1, 20]"``) or not among the choices
            (``"`scene` (X) not in supported list ([...])"``); every problem is listed, one per line.
    """
    problems: list[str] = []
    unknown = [name for name in overrides if name not in parameter_info]
    if unknown:
        problems.append(
            f"Unsupported parameters for this generator: {', '.join(f'`{n}`' for n in unknown)} "
            f"(supported: {', '.join(parameter_info)})"
        )
    for name, value in overrides.items():
        info = parameter_info.get(name)
        if info is None:
            continue
        text = validate_job_param_dict({name: info}, {name: value})
        if text is None:
            continue
        options = _options(info)
        if "Constraint violations" in text and "`choices`" in text:
            problems.append(f"`{name}` ({value}) not in supported list ({list(options.get('choices') or [])})")
        elif "Constraint violations" in text:
            problems.append(f"`{name}` ({value}) must be in range {_range_text(options)}")
        else:
            problems.append(text.strip())
    if problems:
        msg = "\n".join(problems)
        raise ParameterValidationError(msg)


def finish_sample(parameter_info: ParameterInfo, job: Mapping[str, Any], state_given: bool) -> dict[str, Any]:
    """Keep only the generator's keys in schema order, as native types; drop ``state`` unless it was given."""
    ordered = {name: job[name] for name in parameter_info if name in job}
    if not state_given:
        ordered.pop("state", None)
    return normalize_job_params(parameter_info, ordered)


def sample_input(parameter_info: ParameterInfo, rng: RandomLike | None = None, **overrides: Any) -> dict[str, Any]:
    """Generic sampler: validate ``overrides`` and draw every other parameter as :func:`random_job` does.

    Args:
        parameter_info: the generator's schema.
        rng: a ``random.Random``; the ``random`` module when ``None``.
        **overrides: values to keep.

    Returns:
        One job dict with every parameter except an ungiven ``state``.
    """
    check_overrides(parameter_info, overrides)
    job = {**random_job(parameter_info, rng), **overrides}
    return finish_sample(parameter_info, job, "state" in overrides)
