"""VisionFit parameter sampler: tailored distributions and the joint rules the schema cannot express.

Free functions taking the session first (``sample_input(sesh, num_reps=1)``), as in the original workflows; a
``VisionFitSession`` exposes the same sampler as its ``sample_input`` method.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opsin.synth.errors import ParameterValidationError
from opsin.synth.sampling import (
    ParameterInfo,
    RandomLike,
    check_overrides,
    finish_sample,
    random_value,
    resolve_rng,
)

__all__ = ["exercise_category", "exercise_categories", "resolve_exercise", "sample_input"]

_SQUARE_SIDES = (256, 512)
_TRIM_TOTAL = 0.9
_OUTFIT_MAX = {"MALE": 4, "FEMALE": 4}


class _HasParameterInfo(Protocol):
    @property
    def parameter_info(self) -> dict[str, dict[str, Any]]: ...


def exercise_category(name: str) -> str:
    """The category of an exercise name: text before the first ``-``, minus a trailing ``_<digits>``.

    ``UPPERCUT-LEFT`` -> ``UPPERCUT``; ``BURPEE_PUSHUP_05`` -> ``BURPEE_PUSHUP``; ``180_JUMP_SQUAT_03-RIGHT`` ->
    ``180_JUMP_SQUAT``.
    """
    head = name.split("-", 1)[0]
    return re.sub(r"_\d+$", "", head)


def exercise_categories(choices: Sequence[str]) -> dict[str, list[str]]:
    """Map each category to its member exercises (in schema order)."""
    out: dict[str, list[str]] = {}
    for name in choices:
        out.setdefault(exercise_category(name), []).append(name)
    return out


def resolve_exercise(value: str, choices: Sequence[str], rng: RandomLike | None = None) -> str:
    """Return ``value`` when it is an exercise name, else a uniform member of the category it names.

    An exact name wins over a category of the same spelling (``PUSHUP`` stays ``PUSHUP``).

    Raises:
        ParameterValidationError: ``value`` is neither an exercise nor a category.
    """
    if value in choices:
        return value
    members = exercise_categories(choices).get(value)
    if not members:
        msg = f"`exercise` ({value}) not in supported list ({list(choices)}) and not a category of it"
        raise ParameterValidationError(msg)
    return str(resolve_rng(rng).choice(members))


def _clip(value: float, info: Mapping[str, Any]) -> float:
    options = info.get("options") or {}
    low, high = options.get("min"), options.get("max")
    if low is not None:
        value = max(float(low), value)
    if high is not None:
        value = min(float(high), value)
    return value


def _int_range(info: Mapping[str, Any], default_low: int, default_high: int) -> tuple[int, int]:
    options = info.get("options") or {}
    low = options.get("min", default_low)
    high = options.get("max", default_high)
    return int(low if low is not None else default_low), int(high if high is not None else default_high)


def _draws(r: RandomLike, info_of: ParameterInfo) -> dict[str, Callable[[], Any]]:
    """Per-parameter VisionFit draw functions (only for parameters the generator has)."""

    def uniform(low: float, high: float, name: str) -> Callable[[], float]:
        return lambda: _clip(r.uniform(low, high), info_of[name])

    def normal(name: str) -> Callable[[], float]:
        return lambda: _clip(r.gauss(0.0, 1.0), info_of[name])

    def coin() -> bool:
        return r.random() < 0.5

    def identity() -> int:
        low, high = _int_range(info_of["avatar_identity"], 0, 24)
        return r.randint(low, high)

    table: dict[str, Callable[[], Any]] = {
        "num_reps": lambda: r.randint(1, 10),
        "rel_baseline_speed": uniform(0.8, 1.25, "rel_baseline_speed"),
        "max_rel_speed_change": uniform(0.0, 0.2, "max_rel_speed_change"),
        "kinematic_noise_factor": lambda: 1.0,
        "camera_distance": uniform(2.5, 5.0, "camera_distance"),
        "camera_height": uniform(0.1, 2.75, "camera_height"),
        "avatar_identity": identity,
        "randomize_skin_tone": lambda: False,
        "relative_height": normal("relative_height"),
        "relative_weight": normal("relative_weight"),
        "relative_camera_yaw_deg": uniform(-15.0, 15.0, "relative_camera_yaw_deg"),
        "relative_camera_pitch_deg": uniform(-10.0, 10.0, "relative_camera_pitch_deg"),
        "lighting_power": uniform(10.0, 1000.0, "lighting_power"),
        "relative_avatar_angle_deg": uniform(-180.0, 180.0, "relative_avatar_angle_deg"),
        "inter_rep_delay_avg": uniform(0.0, 2.0, "inter_rep_delay_avg"),
        "inter_rep_delay_var": uniform(0.0, 2.0, "inter_rep_delay_var"),
        "add_pauses": coin,
        "add_wall_art": coin,
        "hide_shoes": coin,
        "add_socks": coin,
        "allowable_occlusion": uniform(0.0, 50.0, "allowable_occlusion"),
        "enable_sensor_noise": lambda: True,
    }
    return {name: draw for name, draw in table.items() if name in info_of}


def _sample_size(job: dict[str, Any], given: Mapping[str, Any], info_of: ParameterInfo, r: RandomLike) -> None:
    has_w, has_h = "image_width" in info_of, "image_height" in info_of
    if not (has_w and has_h):
        for name in ("image_width", "image_height"):
            if name in info_of and name not in given:
                job[name] = random_value(info_of[name], r)
        return
    if "image_width" in given and "image_height" in given:
        return
    if "image_width" in given:
        job["image_height"] = given["image_width"]
    elif "image_height" in given:
        job["image_width"] = given["image_height"]
    else:
        side = r.choice(_SQUARE_SIDES)
        job["image_width"] = job["image_height"] = side


def _sample_outfit(job: dict[str, Any], info_of: ParameterInfo, r: RandomLike) -> None:
    low, high = _int_range(info_of["outfit"], -1, 4)
    high = min(high, _OUTFIT_MAX.get(str(job.get("gender", "")).upper(), 4))
    job["outfit"] = r.randint(low, max(low, high))


def _sample_trims(job: dict[str, Any], given: Mapping[str, Any], info_of: ParameterInfo, r: RandomLike) -> None:
    names = ("trim_start_frac", "trim_end_frac")
    if not all(name in info_of for name in names):
        return
    if all(name in given for name in names):
        total = float(given[names[0]]) + float(given[names[1]])
        if total > _TRIM_TOTAL:
            msg = f"`trim_start_frac` + `trim_end_frac` ({total}) must be at most {_TRIM_TOTAL}"
            raise ParameterValidationError(msg)
        return
    for name in names:
        if name in given:
            continue
        other = names[1] if name == names[0] else names[0]
        used = float(given[other]) if other in given else 0.0
        budget = _TRIM_TOTAL - used if other in given else _TRIM_TOTAL / 2
        job[name] = _clip(r.uniform(0.0, max(0.0, budget)), info_of[name])


def sample_input(sesh: _HasParameterInfo, *, rng: RandomLike | None = None, **overrides: Any) -> dict[str, Any]:
    """Draw one VisionFit job: the given ``overrides`` plus VisionFit draws for every other parameter.

    Args:
        sesh: a session (anything with ``parameter_info``) of a VisionFit generator.
        rng: a ``random.Random``; the ``random`` module when ``None`` (``random.seed()`` then reproduces draws).
        **overrides: values to keep; ``exercise`` may name a category (``UPPERCUT``, ``BURPEE_PUSHUP``...).

    Returns:
        One job dict in schema order with native types, every parameter except an ungiven ``state``.

    Raises:
        ParameterValidationError: an unknown key, a bad value, or trims summing above 0.9.
    """
    info_of = sesh.parameter_info
    r = resolve_rng(rng)
    given = dict(overrides)
    if "exercise" in given and "exercise" in info_of and isinstance(given["exercise"], str):
        choices = list((info_of["exercise"].get("options") or {}).get("choices") or [])
        if choices:
            given["exercise"] = resolve_exercise(given["exercise"], choices, r)
    check_overrides(info_of, given)
    draws = _draws(r, info_of)
    job: dict[str, Any] = {}
    for name, info in info_of.items():
        if name in given:
            job[name] = given[name]
        elif name in draws:
            job[name] = draws[name]()
        elif name in ("image_width", "image_height", "outfit", "trim_start_frac", "trim_end_frac", "state"):
            continue  # joint rules below
        else:
            job[name] = random_value(info, r)
    _sample_size(job, given, info_of, r)
    if "outfit" in info_of and "outfit" not in given:
        _sample_outfit(job, info_of, r)
    _sample_trims(job, given, info_of, r)
    return finish_sample(info_of, job, "state" in given)
