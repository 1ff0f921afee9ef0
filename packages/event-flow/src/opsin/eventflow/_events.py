"""The CD event record shared by every reader, writer and feature builder."""

from __future__ import annotations

import numpy as np

from opsin.eventflow.errors import ConfigError

__all__ = ["EVENT_CD", "EXT_TRIGGER", "as_event_cd", "empty_events"]

#: Change-detection event: x, y in pixels, polarity p in {0 = OFF, 1 = ON}, timestamp t in microseconds.
EVENT_CD = np.dtype(
    {"names": ["x", "y", "p", "t"], "formats": ["<u2", "<u2", "<i2", "<i8"], "offsets": [0, 2, 4, 8], "itemsize": 16}
)

#: External trigger event: polarity (edge), timestamp in microseconds and trigger channel id.
EXT_TRIGGER = np.dtype([("p", "<i2"), ("t", "<i8"), ("id", "<i2")])


def empty_events(n: int = 0) -> np.ndarray:
    """Returns a zeroed array of ``n`` events of dtype :data:`EVENT_CD`."""
    return np.zeros(n, dtype=EVENT_CD)


def as_event_cd(events: np.ndarray) -> np.ndarray:
    """Returns ``events`` as an :data:`EVENT_CD` array, mapping polarities p > 0 to 1 and the others to 0.

    Args:
        events: a structured array with fields x, y, p, t (any integer types), or already :data:`EVENT_CD`.

    Returns:
        The input itself when it is already a clean :data:`EVENT_CD` array, else a new array (the input is never
        modified).

    Raises:
        ConfigError: a field is missing.
    """
    names = events.dtype.names or ()
    missing = [f for f in ("x", "y", "p", "t") if f not in names]
    if missing:
        message = f"events need the fields x, y, p, t; missing {missing} in dtype {events.dtype}"
        raise ConfigError(message)
    if events.dtype == EVENT_CD and (events.size == 0 or (events["p"].min() >= 0 and events["p"].max() <= 1)):
        return events
    out = np.zeros(events.shape[0], dtype=EVENT_CD)
    out["x"] = events["x"]
    out["y"] = events["y"]
    out["p"] = (events["p"] > 0).astype(np.int16)
    out["t"] = events["t"]
    return out
