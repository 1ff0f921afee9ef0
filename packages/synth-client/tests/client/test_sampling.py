"""Validation, filling and the VisionFit sampler on the VisionFit schema: rules that need no server."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import pytest

from opsin.synth.errors import ParameterValidationError
from opsin.synth.sampling import random_job, sample_input
from opsin.synth.visionfit.sampling import exercise_category, resolve_exercise
from opsin.synth.visionfit.sampling import sample_input as vf_sample_input

EXERCISES = [
    "PUSHUP",
    "PUSHUP-CLOSE_GRIP",
    "UPPERCUT-LEFT",
    "UPPERCUT-RIGHT",
    "BURPEE",
    "BURPEE_01",
    "BURPEE_02",
    "BURPEE_PUSHUP_01",
    "BURPEE_PUSHUP_03",
    "180_JUMP_SQUAT_03-RIGHT",
    "180_JUMP_SQUAT_05-LEFT",
]


def _p(kind: str, default: Any, options: dict | None = None) -> dict[str, Any]:
    return {"type": kind, "default_value": default, "options": options, "description": ""}


class _Sesh:
    parameter_info: ClassVar[dict[str, dict[str, Any]]] = {
        "scene": _p("str", "BEDROOM_2", {"choices": ["BEDROOM_2", "GYM_1"]}),
        "exercise": _p("str", "PUSHUP", {"choices": EXERCISES}),
        "gender": _p("str", "MALE", {"choices": ["MALE", "FEMALE"]}),
        "num_reps": _p("int", 1, {"min": 1, "max": 20}),
        "camera_distance": _p("float", 3.0, {"min": 1.0, "max": 5.25}),
        "relative_height": _p("float", 0.0, {"min": -4, "max": 4}),
        "add_wall_art": _p("bool", False),
        "outfit": _p("int", -1, {"min": -1, "max": 4}),
        "frame_rate": _p("int", 24, {"choices": [30, 24, 12, 8, 6]}),
        "image_width": _p("int", 256, {"min": 128, "max": 512}),
        "image_height": _p("int", 256, {"min": 128, "max": 512}),
        "enable_sensor_noise": _p("bool", False),
        "trim_start_frac": _p("float", 0.0, {"min": 0.0, "max": 0.9}),
        "trim_end_frac": _p("float", 0.0, {"min": 0.0, "max": 0.9}),
        "state": _p("uuid", None),
    }


def test_exercise_categories() -> None:
    assert exercise_category("UPPERCUT-LEFT") == "UPPERCUT"
    assert exercise_category("BURPEE_PUSHUP_05") == "BURPEE_PUSHUP"
    assert exercise_category("180_JUMP_SQUAT_03-RIGHT") == "180_JUMP_SQUAT"
    rng = random.Random(0)
    assert {resolve_exercise("UPPERCUT", EXERCISES, rng) for _ in range(50)} == {"UPPERCUT-LEFT", "UPPERCUT-RIGHT"}
    assert {resolve_exercise("BURPEE", EXERCISES, rng) for _ in range(20)} == {"BURPEE"}  # exact name wins
    assert {resolve_exercise("BURPEE_PUSHUP", EXERCISES, rng) for _ in range(50)} == {
        "BURPEE_PUSHUP_01",
        "BURPEE_PUSHUP_03",
    }
    with pytest.raises(ParameterValidationError, match="not in supported list"):
        resolve_exercise("YOGA", EXERCISES)


def test_visionfit_sampler_rules() -> None:
    rng = random.Random(1)
    jobs = [vf_sample_input(_Sesh(), rng=rng) for _ in range(300)]
    for job in jobs:
        assert list(job) == [k for k in _Sesh.parameter_info if k != "state"]
        assert job["image_width"] == job["image_height"] in (256, 512)
        assert 1 <= job["num_reps"] <= 10
        assert 2.5 <= job["camera_distance"] <= 5.0
        assert -1 <= job["outfit"] <= 4
        assert job["enable_sensor_noise"] is True
        assert job["trim_start_frac"] + job["trim_end_frac"] <= 0.9
        assert -4 <= job["relative_height"] <= 4
    heights = [j["relative_height"] for j in jobs]
    assert abs(sum(heights) / len(heights)) < 0.2  # N(0, 1)
    assert {j["add_wall_art"] for j in jobs} == {True, False}
    one_side = vf_sample_input(_Sesh(), rng=rng, image_width=200)
    assert one_side["image_height"] == 200
    fixed = vf_sample_input(_Sesh(), rng=rng, exercise="UPPERCUT", num_reps=3, state="abc")
    assert fixed["exercise"].startswith("UPPERCUT-")
    assert fixed["num_reps"] == 3
    assert fixed["state"] == "abc"
    trimmed = vf_sample_input(_Sesh(), rng=rng, trim_start_frac=0.8)
    assert trimmed["trim_end_frac"] <= 0.1 + 1e-12
    with pytest.raises(ParameterValidationError, match=r"at most 0\.9"):
        vf_sample_input(_Sesh(), trim_start_frac=0.5, trim_end_frac=0.5)
    with pytest.raises(ParameterValidationError, match=r"`num_reps` \(25\) must be in range \[1, 20\]"):
        vf_sample_input(_Sesh(), num_reps=25)
    with pytest.raises(ParameterValidationError, match=r"`scene` \(X\) not in supported list"):
        vf_sample_input(_Sesh(), scene="X")
    with pytest.raises(ParameterValidationError, match="`colour`"):
        vf_sample_input(_Sesh(), colour=1)


def test_reproducible_with_module_random() -> None:
    random.seed(42)
    a = [vf_sample_input(_Sesh()) for _ in range(5)]
    random.seed(42)
    assert a == [vf_sample_input(_Sesh()) for _ in range(5)]


def test_generic_sampler_and_random_job() -> None:
    info = _Sesh.parameter_info
    rng = random.Random(5)
    jobs = [random_job(info, rng) for _ in range(200)]
    assert {j["frame_rate"] for j in jobs} == {30, 24, 12, 8, 6}
    assert min(j["num_reps"] for j in jobs) == 1
    assert max(j["num_reps"] for j in jobs) == 20
    assert all(j["add_wall_art"] is False and j["state"] is None for j in jobs)  # bools/uuids keep defaults
    job = sample_input(info, rng, num_reps="7")
    assert job["num_reps"] == 7
    assert type(job["num_reps"]) is int
    assert "state" not in job
    with pytest.raises(ParameterValidationError):
        sample_input(info, rng, num_reps=2.5)
