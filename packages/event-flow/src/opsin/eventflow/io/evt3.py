"""EVT 3.0 RAW files: vectorised reader.

Body: little-endian uint16 words, type = w >> 12. ADDR_Y (0x0): y = bits 0-10. ADDR_X (0x2): x = bits 0-10,
p = bit 11, one event. VECT_BASE_X (0x3): base_x = bits 0-10, p = bit 11. VECT_12 (0x4) / VECT_8 (0x5): one event
per set bit i of the low 12 / 8 bits at base_x + i, then base_x advances by 12 / 8. TIME_LOW (0x6): t = base + low
12 bits. TIME_HIGH (0x8): base = bits 0-11 << 12, t = base. EXT_TRIGGER (0xA): value = bit 0, id = bits 8-11.
CONTINUED (0x7, 0xF), IMU (0xD), OTHERS (0xE) and 0xB/0xC are skipped. Time wraps after 2**24 us.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from opsin.eventflow._events import EVENT_CD, EXT_TRIGGER
from opsin.eventflow.errors import FormatError
from opsin.eventflow.io._raw_header import parse_raw_header
from opsin.eventflow.io.evt2 import _last_index, _unwrap_time_high

__all__ = ["read_evt3"]

_PERIOD = 1 << 24
_LOOP_THRESHOLD = (_PERIOD - 4096) - 40960
_ADDR_Y, _ADDR_X, _VECT_BASE_X, _VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH, _EXT_TRIGGER = 0, 2, 3, 4, 5, 6, 8, 0xA
_SKIPPED = (0x7, 0xB, 0xC, 0xD, 0xE, 0xF)


def read_evt3(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Decodes an EVT 3.0 RAW file.

    Args:
        path: the ``.raw`` file.

    Returns:
        ``(events, meta)`` as :func:`~opsin.eventflow.io.evt2.read_evt2`: :data:`EVENT_CD` events (stably sorted by
        t) and ``height``, ``width``, ``header``, ``data_offset``, ``ext_trigger``.

    Raises:
        FormatError: an odd number of body bytes, or a word type EVT 3.0 does not define (0x1, 0x9).
    """
    path = Path(path)
    data = path.read_bytes()
    header = parse_raw_header(path, data)
    if header.evt and header.evt != "3.0":
        raise FormatError(path, 0, f"header declares evt {header.evt}, not 3.0")
    body = len(data) - header.data_offset
    if body % 2:
        raise FormatError(path, len(data) - 1, f"truncated word: 1 trailing byte after {body // 2} 16-bit words")
    words = np.frombuffer(data, dtype="<u2", offset=header.data_offset, count=body // 2).astype(np.int64)
    types = words >> 12
    known = np.isin(
        types, [_ADDR_Y, _ADDR_X, _VECT_BASE_X, _VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH, _EXT_TRIGGER, *_SKIPPED]
    )
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        message = f"word 0x{int(words[i]):04x} has type 0x{int(types[i]):x}, undefined in EVT 3.0 (corrupt data)"
        raise FormatError(path, header.data_offset + 2 * i, message)
    is_th = types == _TIME_HIGH
    is_tl = types == _TIME_LOW
    is_y = types == _ADDR_Y
    is_bx = types == _VECT_BASE_X
    bases = _unwrap_time_high((words[is_th] & 0xFFF) << 12, _PERIOD, _LOOP_THRESHOLD)
    last_th = _last_index(is_th)
    last_tl = _last_index(is_tl)
    last_y = _last_index(is_y)
    last_bx = _last_index(is_bx)
    th_rank = np.cumsum(is_th) - 1
    base_t = np.where(last_th >= 0, bases[np.maximum(th_rank, 0)] if bases.size else 0, 0)
    low = np.where(last_tl > last_th, words[np.maximum(last_tl, 0)] & 0xFFF, 0)
    t_all = base_t + low
    y_all = np.where(last_y >= 0, words[np.maximum(last_y, 0)] & 0x7FF, 0)
    started = last_th >= 0

    # Single events.
    is_x = (types == _ADDR_X) & started & (last_y >= 0)
    xw = words[is_x]
    single = np.zeros(xw.size, dtype=EVENT_CD)
    single["x"] = xw & 0x7FF
    single["y"] = y_all[is_x]
    single["p"] = (xw >> 11) & 1
    single["t"] = t_all[is_x]
    single_pos = np.flatnonzero(is_x)

    # Vectorised events: base_x = value of the last VECT_BASE_X plus the widths of the vectors since.
    width = np.where(types == _VECT_12, 12, np.where(types == _VECT_8, 8, 0))
    cum_before = np.cumsum(width) - width
    is_vec = (width > 0) & started & (last_y >= 0) & (last_bx >= 0)
    vec_idx = np.flatnonzero(is_vec)
    bx_idx = last_bx[vec_idx]
    base_x = (words[bx_idx] & 0x7FF) + (cum_before[vec_idx] - cum_before[bx_idx] - width[bx_idx])
    vec_p = (words[bx_idx] >> 11) & 1
    bits = ((words[vec_idx, None] >> np.arange(12)) & 1).astype(bool)
    bits &= np.arange(12)[None, :] < width[vec_idx, None]
    rows, cols = np.nonzero(bits)
    vect = np.zeros(rows.size, dtype=EVENT_CD)
    vect["x"] = base_x[rows] + cols
    vect["y"] = y_all[vec_idx][rows]
    vect["p"] = vec_p[rows]
    vect["t"] = t_all[vec_idx][rows]
    vect_pos = vec_idx[rows]

    # Merge in word order (then stable by time).
    pos = np.concatenate([single_pos, vect_pos])
    sub = np.concatenate([np.zeros(single_pos.size, np.int64), cols.astype(np.int64)])
    events = np.concatenate([single, vect])
    order = np.lexsort((sub, pos))
    events = events[order]
    if events.size > 1 and (np.diff(events["t"]) < 0).any():
        events = events[np.argsort(events["t"], kind="stable")]

    is_trig = (types == _EXT_TRIGGER) & started
    tw = words[is_trig]
    triggers = np.empty(tw.size, dtype=EXT_TRIGGER)
    triggers["p"] = tw & 1
    triggers["id"] = (tw >> 8) & 0xF
    triggers["t"] = t_all[is_trig]
    height, width_px = header.height, header.width
    if (height < 0 or width_px < 0) and events.size:
        height, width_px = int(events["y"].max()) + 1, int(events["x"].max()) + 1
    meta = {
        "height": height,
        "width": width_px,
        "header": header.fields,
        "data_offset": header.data_offset,
        "ext_trigger": triggers,
    }
    return events, meta
