from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from opsin.core import OpsinJSONEncoder, dumps_json, to_jsonable


class Color(enum.Enum):
    RED = "red"


@dataclass
class Point:
    x: int
    y: float


def test_roundtrip_of_scientific_values() -> None:
    value = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "arr": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "path": Path("/tmp/x.png"),
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "dt": timedelta(seconds=90),
        "id": uuid.UUID(int=1),
        "color": Color.RED,
        "tags": {"b", "a"},
        "point": Point(1, 2.5),
    }
    back = json.loads(dumps_json(value))
    assert back == {
        "i": 3,
        "f": 0.5,
        "b": True,
        "arr": [[0, 1, 2], [3, 4, 5]],
        "path": "/tmp/x.png",
        "when": "2026-01-02T03:04:05+00:00",
        "dt": 90.0,
        "id": "00000000-0000-0000-0000-000000000001",
        "color": "red",
        "tags": ["a", "b"],
        "point": {"x": 1, "y": 2.5},
    }
    assert isinstance(back["i"], int)
    assert datetime.fromisoformat(back["when"]) == value["when"]


def test_encoder_class_works_with_stdlib_json() -> None:
    assert json.dumps([np.float64(1.25)], cls=OpsinJSONEncoder) == "[1.25]"


def test_unknown_types_are_named() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable(object())
