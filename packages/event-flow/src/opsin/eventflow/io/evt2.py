"""EVT 2.0 RAW files: vectorised reader and a writer.

Body: little-endian uint32 words, type = w >> 28. CD_OFF (0x0) / CD_ON (0x1): y = bits 0-10, x = bits 11-21,
ts_lsb = bits 22-27, t = time_high + ts_lsb. EVT_TIME_HIGH (0x8): time_high = bits 0-27 << 6. EXT_TRIGGER (0xA):
value = bit 0, id = bits 8-12. IMU (0xD, followed by 5 words), OTHER (0xE) and CONTINUED (0xF) are skipped.
Time wraps after 2**34 us.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from opsin.core import atomic_write_bytes
from opsin.eventflow._events import EVENT_CD, EXT_TRIGGER, as_event_cd
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._raw_header import parse_raw_header

__all__ = ["encode_evt2", "read_evt2", "write_evt2"]

_PERIOD = 1 << 34
_LOOP_THRESHOLD = (_PERIOD - 64) - 640
_CD_OFF, _CD_ON, _TIME_HIGH, _EXT_TRIGGER, _IMU, _OTHER, _CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xD, 0xE, 0xF


def _unwrap_time_high(bases: np.ndarray, period: int, threshold: int) -> np.ndarray:
    """Adds ``period`` at every drop of at least ``threshold`` between consecutive time bases."""
    if bases.size < 2:
        return bases.astype(np.int64)
    drops = np.diff(bases.astype(np.int64)) <= -threshold
    loops = np.concatenate([[0], np.cumsum(drops)]).astype(np.int64)
    return bases.astype(np.int64) + loops * period


def _last_index(mask: np.ndarray) -> np.ndarray:
    """For each position, the index of the last True at or before it (-1 before the first)."""
    idx = np.where(mask, np.arange(mask.size), -1)
    return np.maximum.accumulate(idx) if idx.size else idx


def read_evt2(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Decodes an EVT 2.0 RAW file.

    Args:
        path: the ``.raw`` file.

    Returns:
        ``(events, meta)``: :data:`EVENT_CD` events in file order (sorted by t for well-formed files) and a dict with
        ``height``, ``width``, ``header`` (the header fields), ``data_offset`` and ``ext_trigger`` (an
        :data:`~opsin.eventflow._events.EXT_TRIGGER` array).

    Raises:
        FormatError: the body is not a whole number of words, or a word has a type EVT 2.0 does not define.
    """
    path = Path(path)
    data = path.read_bytes()
    header = parse_raw_header(path, data)
    if header.evt and header.evt != "2.0":
        raise FormatError(path, 0, f"header declares evt {header.evt}, not 2.0")
    body = len(data) - header.data_offset
    if body % 4:
        bad = header.data_offset + body - body % 4
        raise FormatError(path, bad, f"truncated word: {body % 4} trailing bytes after {body // 4} 32-bit words")
    words = np.frombuffer(data, dtype="<u4", offset=header.data_offset, count=body // 4)
    types = (words >> 28).astype(np.uint8)
    # Words that follow an IMU word are its payload, whatever their bits.
    imu = np.flatnonzero(types == _IMU)
    payload = np.zeros(words.size, dtype=bool)
    for k in range(1, 6):
        payload[imu[imu + k < words.size] + k] = True
    known = np.isin(types, [_CD_OFF, _CD_ON, _TIME_HIGH, _EXT_TRIGGER, _IMU, _OTHER, _CONTINUED]) | payload
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        message = f"word 0x{int(words[i]):08x} has type 0x{int(types[i]):x}, undefined in EVT 2.0 (corrupt data)"
        raise FormatError(path, header.data_offset + 4 * i, message)
    is_th = (types == _TIME_HIGH) & ~payload
    bases = _unwrap_time_high((words[is_th] & 0x0FFFFFFF).astype(np.int64) << 6, _PERIOD, _LOOP_THRESHOLD)
    last = _last_index(is_th)
    th_rank = np.cumsum(is_th) - 1
    is_cd = ((types == _CD_OFF) | (types == _CD_ON)) & ~payload & (last >= 0)
    cd_words = words[is_cd]
    base_cd = bases[th_rank[is_cd]] if bases.size else np.zeros(0, np.int64)
    events = np.zeros(cd_words.size, dtype=EVENT_CD)
    events["y"] = cd_words & 0x7FF
    events["x"] = (cd_words >> 11) & 0x7FF
    events["p"] = types[is_cd]
    events["t"] = base_cd + ((cd_words >> 22) & 0x3F)
    is_trig = (types == _EXT_TRIGGER) & ~payload & (last >= 0)
    tw = words[is_trig]
    triggers = np.empty(tw.size, dtype=EXT_TRIGGER)
    triggers["p"] = tw & 1
    triggers["id"] = (tw >> 8) & 0x1F
    triggers["t"] = (bases[th_rank[is_trig]] if bases.size else 0) + ((tw >> 22) & 0x3F)
    height, width = header.height, header.width
    if (height < 0 or width < 0) and events.size:
        height, width = int(events["y"].max()) + 1, int(events["x"].max()) + 1
    meta = {
        "height": height,
        "width": width,
        "header": header.fields,
        "data_offset": header.data_offset,
        "ext_trigger": triggers,
    }
    return events, meta


def encode_evt2(events: np.ndarray) -> np.ndarray:
    """Encodes sorted CD events into EVT 2.0 words: a TIME_HIGH word whenever ``t >> 6`` changes, then CD words.

    Raises:
        ConfigError: unsorted or negative timestamps, or coordinates >= 2048.
    """
    ev = as_event_cd(events)
    if ev.size == 0:
        return np.zeros(0, dtype="<u4")
    t = ev["t"].astype(np.int64)
    if t[0] < 0 or (np.diff(t) < 0).any():
        message = "EVT 2.0 events must be sorted by t with t >= 0"
        raise ConfigError(message)
    if int(ev["x"].max()) >= 2048 or int(ev["y"].max()) >= 2048:
        message = "EVT 2.0 coordinates must be < 2048 (11-bit fields)"
        raise ConfigError(message)
    high = t >> 6
    new_high = np.ones(t.size, dtype=bool)
    new_high[1:] = high[1:] != high[:-1]
    n_th = int(new_high.sum())
    out = np.empty(t.size + n_th, dtype="<u4")
    # Position of each CD word: after all TIME_HIGH words emitted so far.
    cd_pos = np.arange(t.size) + np.cumsum(new_high)
    th_pos = cd_pos[new_high] - 1
    out[th_pos] = (np.uint32(_TIME_HIGH) << 28) | (high[new_high] & 0x0FFFFFFF).astype(np.uint32)
    cd = (ev["p"].astype(np.uint32) << 28) | ((t & 0x3F).astype(np.uint32) << 22)
    cd |= ev["x"].astype(np.uint32) << 11
    cd |= ev["y"].astype(np.uint32)
    out[cd_pos] = cd
    return out


def write_evt2(path: str | Path, events: np.ndarray, height: int, width: int, date: str = "") -> Path:
    """Writes CD events to an EVT 2.0 RAW file atomically (header ended by ``% end``, then the words).

    Args:
        path: the output ``.raw`` file.
        events: :data:`EVENT_CD` events sorted by t (never modified).
        height: sensor height.
        width: sensor width.
        date: the header's date line (empty: omitted, for byte-identical files).

    Returns:
        The path written.
    """
    path = Path(path)
    lines = ["% evt 2.0", f"% format EVT2;height={int(height)};width={int(width)}", f"% geometry {width}x{height}"]
    if date:
        lines.append(f"% date {date}")
    lines += ["% integrator_name Prophesee", "% end"]
    payload = ("\n".join(lines) + "\n").encode("latin-1") + encode_evt2(events).tobytes()
    atomic_write_bytes(path, payload)
    return path
