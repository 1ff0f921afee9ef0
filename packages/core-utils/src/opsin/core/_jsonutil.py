"""JSON for the values scientific code actually produces."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import PurePath
from typing import Any

__all__ = ["OpsinJSONEncoder", "dumps_json", "to_jsonable"]


def _numpy_value(obj: Any) -> tuple[bool, Any]:
    """Convert NumPy scalars and arrays without importing NumPy when the caller never used it."""
    module = type(obj).__module__
    if not module.startswith("numpy"):
        return False, None
    if hasattr(obj, "tolist"):
        return True, obj.tolist()
    if hasattr(obj, "item"):  # pragma: no cover - every numpy scalar has tolist
        return True, obj.item()
    return False, None


def to_jsonable(obj: Any) -> Any:
    """Convert one value that :mod:`json` cannot serialise into one it can.

    Handles NumPy scalars and arrays (as numbers and nested lists), paths (as strings), datetimes, dates and times
    (ISO 8601), timedeltas (seconds), UUIDs (strings), enums (their value), sets (sorted lists when sortable),
    dataclasses (dicts) and bytes (rejected with a clear message).

    Args:
        obj: the value.

    Returns:
        A JSON-compatible equivalent.

    Raises:
        TypeError: no conversion is known for the value's type.
    """
    handled, value = _numpy_value(obj)
    if handled:
        return value
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset):
        items = list(obj)
        try:
            return sorted(items)
        except TypeError:
            return items
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    msg = f"Object of type {type(obj).__name__} is not JSON serializable"
    raise TypeError(msg)


class OpsinJSONEncoder(json.JSONEncoder):
    """A :class:`json.JSONEncoder` that understands NumPy values, paths, datetimes, UUIDs, enums and sets."""

    def default(self, o: Any) -> Any:
        """Convert ``o`` with :func:`to_jsonable`."""
        return to_jsonable(o)


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """Serialise ``obj`` with :class:`OpsinJSONEncoder`.

    Args:
        obj: the value.
        **kwargs: forwarded to :func:`json.dumps` (``indent``, ``sort_keys``, ``allow_nan``...).

    Returns:
        The JSON text.
    """
    kwargs.setdefault("cls", OpsinJSONEncoder)
    return json.dumps(obj, **kwargs)
