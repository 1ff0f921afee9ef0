"""Job-parameter validation against a generator schema, shared by the service and the client.

The rules are pure functions of a ``parameter_info`` mapping (``{name: {"type", "default_value", "options",
"description"}}``) and the user's job dicts, so the service and the client give the same messages for the same input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "fill_job_params",
    "normalize_job_params",
    "validate_job_param_dict",
    "validate_job_params",
]

_HEADINGS = (
    ("unsupported", "Unsupported parameters"),
    ("type", "Type violations"),
    ("cast", "Type casting violations"),
    ("constraint", "Constraint violations"),
)
_INSTANCE_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "bool": (bool,), "uuid": (str, type(None))}


def _is_bool(value: Any) -> bool:
    """Python or NumPy boolean (NumPy's type is ``numpy.bool_``, named ``bool`` since NumPy 2)."""
    return isinstance(value, bool) or (type(value).__name__ in ("bool", "bool_") and hasattr(value, "dtype"))


def _type_name(value: Any) -> str:
    return type(value).__name__


def _cast_number(value: Any, kind: str) -> int | float:
    """Convert ``value`` to ``int`` or ``float``, raising ``ValueError`` when it does not convert.

    Python and NumPy numbers and numeric strings pass, as in the original Infinity client's relaxed check. Tighter
    than the original: ``bool`` never passes, an ``int`` must be integral, and non-finite floats are refused (they
    have no JSON form).
    """
    if _is_bool(value):
        msg = "booleans are not numbers here"
        raise ValueError(msg)
    if kind == "float":
        result = float(value)
        if not math.isfinite(result):
            msg = "not a finite number"
            raise ValueError(msg)
        return result
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return _integral(float(value))
    if isinstance(value, int):
        return int(value)
    # floats, NumPy scalars and other number-likes: must be integral
    return _integral(value)


def _integral(value: Any) -> int:
    number = float(value)
    if not math.isfinite(number) or not number.is_integer():
        msg = f"{value!r} is not an integer"
        raise ValueError(msg)
    return int(number)


def _format_value(value: Any) -> str:
    return str(value)


def validate_job_param_dict(parameter_info: Mapping[str, Mapping[str, Any]], job: Mapping[str, Any]) -> str | None:
    """Validate one job dict against the schema.

    Args:
        parameter_info: ``{name: {"type", "default_value", "options", "description"}}`` of the generator.
        job: the parameters given for one job (possibly partial).

    Returns:
        ``None`` when every key is valid, else the violation text of the original client: for each non-empty
        section a blank line, its heading, a colon and one line per violation.
    """
    found: dict[str, list[str]] = {key: [] for key, _ in _HEADINGS}
    for name, value in job.items():
        info = parameter_info.get(name)
        if info is None:
            found["unsupported"].append(f"Input parameter `{name}` is not supported by the generator")
            continue
        kind = str(info.get("type"))
        if kind in _INSTANCE_TYPES:
            if not isinstance(value, _INSTANCE_TYPES[kind]):
                expected = "str or None" if kind == "uuid" else kind
                found["type"].append(
                    f"Input parameter `{name}` expected type `{expected}` but got `{_type_name(value)}`"
                )
                continue
            converted: Any = value
        elif kind in ("int", "float"):
            try:
                converted = _cast_number(value, kind)
            except (TypeError, ValueError, OverflowError):
                found["cast"].append(
                    f"Input parameter `{name}` with value {_format_value(value)} could not be cast to `{kind}`"
                )
                continue
        else:
            converted = value
        options = info.get("options") or {}
        if not isinstance(options, Mapping) or converted is None:
            continue
        if "min" in options and options["min"] is not None and converted < options["min"]:
            found["constraint"].append(
                f"Input parameter `{name}` violated constraint `min` ({options['min']}) with value "
                f"{_format_value(converted)}"
            )
        if "max" in options and options["max"] is not None and converted > options["max"]:
            found["constraint"].append(
                f"Input parameter `{name}` violated constraint `max` ({options['max']}) with value "
                f"{_format_value(converted)}"
            )
        choices = options.get("choices")
        if choices is not None and not _is_member(converted, choices):
            found["constraint"].append(
                f"Input parameter `{name}` violated constraint `choices` ({list(choices)}) with value "
                f"{_format_value(converted)}"
            )
    sections = [
        f"\n\n{heading}:\n" + "".join(line + "\n" for line in found[key]) for key, heading in _HEADINGS if found[key]
    ]
    return "".join(sections) if sections else None


def _is_member(value: Any, choices: Sequence[Any]) -> bool:
    for choice in choices:
        # bool is an int subclass: True must not match a choice of 1
        if isinstance(choice, bool) != isinstance(value, bool):
            continue
        try:
            if choice == value:
                return True
        except Exception:
            continue
    return False


def validate_job_params(
    parameter_info: Mapping[str, Mapping[str, Any]], job_params: Sequence[Mapping[str, Any]]
) -> list[str | None]:
    """Validate every job dict, one result per dict: ``None`` when clean, else the violation text."""
    return [validate_job_param_dict(parameter_info, job) for job in job_params]


def normalize_job_params(parameter_info: Mapping[str, Mapping[str, Any]], job: Mapping[str, Any]) -> dict[str, Any]:
    """Convert the values of a *valid* job dict to native JSON types by schema type.

    ``int`` / ``float`` parameters become Python ``int`` / ``float`` (NumPy scalars and numeric strings included);
    other values are kept. Keys follow the schema order, unknown keys are kept at the end.
    """
    out: dict[str, Any] = {}
    ordered = [name for name in parameter_info if name in job] + [name for name in job if name not in parameter_info]
    for name in ordered:
        value = job[name]
        kind = str(parameter_info.get(name, {}).get("type"))
        if kind in ("int", "float") and value is not None:
            value = _cast_number(value, kind)
        elif kind == "bool" and _is_bool(value):
            value = bool(value)
        out[name] = value
    return out


def fill_job_params(parameter_info: Mapping[str, Mapping[str, Any]], job: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``{**defaults, **job}`` normalised, in schema order (every parameter present, ``state`` included)."""
    filled = {name: info.get("default_value") for name, info in parameter_info.items()}
    filled.update(job)
    return normalize_job_params(parameter_info, filled)
