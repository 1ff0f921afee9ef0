"""Job-parameter validation and normalisation as a pure function (shared by the service and the client)."""

from __future__ import annotations

import numpy as np
import pytest

from opsin.synth._validation import fill_job_params, normalize_job_params, validate_job_params

INFO = {
    "num_reps": {"type": "int", "default_value": 1, "options": {"min": 1, "max": 20}, "description": ""},
    "speed": {"type": "float", "default_value": 1.0, "options": {"min": 0.33, "max": 3.0}, "description": ""},
    "scene": {
        "type": "str",
        "default_value": "GYM_1",
        "options": {"choices": ["GYM_1", "OFFICE_1"]},
        "description": "",
    },
    "fps": {"type": "int", "default_value": 24, "options": {"choices": [6, 8, 24]}, "description": ""},
    "noise": {"type": "bool", "default_value": False, "options": None, "description": ""},
    "state": {"type": "uuid", "default_value": None, "options": None, "description": ""},
}


def test_clean_jobs_give_none() -> None:
    jobs = [{}, {"num_reps": 3, "speed": 1, "scene": "OFFICE_1", "noise": True, "state": None}]
    assert validate_job_params(INFO, jobs) == [None, None]


def test_exact_constraint_message() -> None:
    assert validate_job_params(INFO, [{"num_reps": 25}]) == [
        "\n\nConstraint violations:\nInput parameter `num_reps` violated constraint `max` (20) with value 25\n"
    ]


def test_min_and_choices_messages() -> None:
    (text,) = validate_job_params(INFO, [{"speed": 0.1, "scene": "MOON"}])
    assert text is not None
    assert "Input parameter `speed` violated constraint `min` (0.33) with value 0.1\n" in text
    assert "Input parameter `scene` violated constraint `choices` (['GYM_1', 'OFFICE_1']) with value MOON\n" in text


def test_sections_in_order_with_blank_lines() -> None:
    (text,) = validate_job_params(INFO, [{"bogus": 1, "scene": 3, "num_reps": "abc", "speed": 9.0}])
    assert text is not None
    headings = ["Unsupported parameters:", "Type violations:", "Type casting violations:", "Constraint violations:"]
    positions = [text.index("\n\n" + heading + "\n") for heading in headings]
    assert positions == sorted(positions)
    assert "`bogus`" in text
    assert "`scene` expected type `str` but got `int`" in text
    assert "`num_reps` with value abc could not be cast to `int`" in text


@pytest.mark.parametrize("value", [3, "3", np.int64(3), 3.0, np.float32(3.0), "3.0"])
def test_relaxed_int_casting_passes(value: object) -> None:
    assert validate_job_params(INFO, [{"num_reps": value}]) == [None]
    assert normalize_job_params(INFO, {"num_reps": value}) == {"num_reps": 3}
    assert type(normalize_job_params(INFO, {"num_reps": value})["num_reps"]) is int


@pytest.mark.parametrize("value", [True, False, 2.5, "2.5", None, [1], float("nan"), np.bool_(True)])
def test_tightened_int_casting_rejects(value: object) -> None:
    (text,) = validate_job_params(INFO, [{"num_reps": value}])
    assert text is not None
    assert "Type casting violations:" in text
    assert "`num_reps`" in text


def test_float_rejects_bool_and_non_finite() -> None:
    for value in (True, "inf", float("nan")):
        (text,) = validate_job_params(INFO, [{"speed": value}])
        assert text is not None
        assert "`speed`" in text


def test_choices_compared_after_conversion() -> None:
    assert validate_job_params(INFO, [{"fps": 6.0}, {"fps": "8"}]) == [None, None]
    (text,) = validate_job_params(INFO, [{"fps": 7}])
    assert text is not None
    assert "constraint `choices`" in text


def test_bool_and_uuid_types() -> None:
    results = validate_job_params(INFO, [{"noise": 1}, {"state": 5}, {"state": "abc"}, {"noise": np.bool_(True)}])
    assert results[0] is not None
    assert "`noise` expected type `bool` but got `int`" in results[0]
    assert results[1] is not None
    assert "`state`" in results[1]
    assert results[2] is None  # existence of the state job is the service's business, not the schema's
    assert results[3] is not None  # numpy bools are not Python bools


def test_fill_orders_by_schema_and_uses_native_types() -> None:
    filled = fill_job_params(INFO, {"fps": np.int64(8), "speed": "2", "scene": "OFFICE_1"})
    assert list(filled) == list(INFO)
    assert filled == {"num_reps": 1, "speed": 2.0, "scene": "OFFICE_1", "fps": 8, "noise": False, "state": None}
    assert type(filled["fps"]) is int
    assert type(filled["speed"]) is float
