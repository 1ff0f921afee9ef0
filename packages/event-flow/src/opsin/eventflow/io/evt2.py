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
from opsin.eventflow._events import EXT_TRIGGER, as_event_cd
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._raw_body import EventBuffer, RawBody, TimeBaseUnwrapper, packed_columns

__all__ = ["encode_evt2", "read_evt2", "write_evt2"]

#: Words per vectorised step: large enough to hide Python's per-call cost, small enough that the temporaries stay
#: in the cache and are reused by the allocator.
BLOCK_WORDS = 1 << 17

_PERIOD = 1 << 34
_LOOP_THRESHOLD = (_PERIOD - 64) - 640
_CD_OFF, _CD_ON, _TIME_HIGH, _EXT_TRIGGER, _IMU, _OTHER, _CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xD, 0xE, 0xF


_TYPE_OK = np.zeros(16, dtype=bool)
_TYPE_OK[[_CD_OFF, _CD_ON, _TIME_HIGH, _EXT_TRIGGER, _IMU, _OTHER, _CONTINUED]] = True
_IMU_PAYLOAD = 5
_CD_LIMIT = np.uint32(0x20000000)  # words below are CD_OFF / CD_ON


class _Evt2Decoder:
    """Decodes EVT 2.0 words block by block; the time base and an unfinished IMU payload carry over."""

    def __init__(self, path: Path, data_offset: int, block: int, track_size: bool) -> None:
        self.path = path
        self.data_offset = data_offset
        self.base = -1  # the time base in force, -1 before the first TIME_HIGH word
        self.unwrap = TimeBaseUnwrapper(_PERIOD, _LOOP_THRESHOLD)
        self.imu_left = 0  # IMU payload words still to skip at the start of the next block
        self.triggers: list[np.ndarray] = []
        self.track_size = track_size
        self.max_x = self.max_y = -1
        # Scratch arrays reused by every block: fresh temporaries of this size would each cost page faults.
        self._is_cd = np.empty(block, dtype=bool)
        self._a = np.empty(block, dtype=np.uint32)
        self._b = np.empty(block, dtype=np.uint32)
        self._lsb = np.empty(block, dtype=np.int64)

    def _skip_imu_payload(self, is_cd: np.ndarray, other: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Marks IMU payload words (the 5 after each IMU word, whatever their bits) as neither CD nor state.

        Returns:
            The positions of the remaining non-CD words.
        """
        n = is_cd.size
        payload = np.zeros(n, dtype=bool)
        end = self.imu_left  # the block starts inside the payload of the previous block's last IMU word
        payload[:end] = True
        for i in other[kinds == _IMU].tolist():
            if i >= end:  # an IMU type inside a payload is data
                end = i + 1 + _IMU_PAYLOAD
                payload[i + 1 : end] = True
        self.imu_left = max(0, end - n)
        is_cd &= ~payload
        return np.flatnonzero(~(is_cd | payload))

    def block(self, words: np.ndarray, first_word: int, buffer: EventBuffer) -> None:
        """Decodes ``words`` (the body from word ``first_word`` on) and appends its CD events to ``buffer``."""
        n = words.size
        is_cd = np.less(words, _CD_LIMIT, out=self._is_cd[:n])
        other = np.flatnonzero(~is_cd)  # every word that is not a CD event, few in a real stream
        kinds = (words[other] >> 28).astype(np.uint8)
        has_payload = bool(self.imu_left) or bool((kinds == _IMU).any())
        if has_payload:
            other = self._skip_imu_payload(is_cd, other, kinds)
            kinds = (words[other] >> 28).astype(np.uint8)
        bad = np.flatnonzero(~_TYPE_OK[kinds])
        if bad.size:
            i = int(other[bad[0]])
            word = int(words[i])
            message = f"word 0x{word:08x} has type 0x{word >> 28:x}, undefined in EVT 2.0 (corrupt data)"
            raise FormatError(self.path, self.data_offset + 4 * (first_word + i), message)
        is_th = kinds == _TIME_HIGH
        bases = self.unwrap((words[other[is_th]] & 0x0FFFFFFF).astype(np.int64) << 6)
        # seg_base[j] is the time base of the CD words that follow non-CD word j - 1 (j = 0: the block start).
        seg_base = np.empty(other.size + 1, dtype=np.int64)
        seg_base[0] = self.base
        seg_base[1:] = np.concatenate(([self.base], bases))[np.cumsum(is_th)]
        if has_payload:  # the gaps between non-CD words also hold payload words
            cd_before = np.cumsum(is_cd)
            seg_len = np.diff(cd_before[other], prepend=0, append=cd_before[-1])
        else:
            seg_len = np.diff(other, prepend=-1, append=n) - 1
        n_cd = int(seg_len.sum())
        cd = words[is_cd] if n_cd < n else words
        if self.base < 0:  # CD words before the first TIME_HIGH have no time: dropped
            started = seg_base >= 0
            first = int(np.argmax(started)) if started.any() else seg_base.size
            cd = cd[int(seg_len[:first].sum()) :]
            seg_len[:first] = 0
        self.base = int(seg_base[-1])
        is_trig = (kinds == _EXT_TRIGGER) & (seg_base[1:] >= 0)
        if is_trig.any():
            tw = words[other[is_trig]]
            trig = np.empty(tw.size, dtype=EXT_TRIGGER)
            trig["p"] = tw & 1
            trig["id"] = (tw >> 8) & 0x1F
            trig["t"] = seg_base[1:][is_trig] + ((tw >> 22) & 0x3F)
            self.triggers.append(trig)
        # Computed in the scratch arrays, then one strided write per column.
        m = cd.size
        xy, p, t = packed_columns(buffer.claim(m))
        if not m:
            return
        high, low = self._a[:m], self._b[:m]
        np.left_shift(cd, 16, out=high)  # y (bits 0-10) into the high half
        high &= 0x07FF0000
        np.right_shift(cd, 11, out=low)
        low &= 0x7FF
        if self.track_size:
            self.max_x = max(self.max_x, int(low.max()))
            self.max_y = max(self.max_y, int(high.max()) >> 16)
        np.bitwise_or(high, low, out=xy)
        np.right_shift(cd, 28, out=p)  # the type is the polarity: 0 OFF, 1 ON
        lsb = self._lsb[:m]  # int64, so that the add below runs without a casting buffer
        np.right_shift(cd, 22, out=lsb)
        lsb &= 0x3F
        np.add(np.repeat(seg_base, seg_len), lsb, out=t)


def read_evt2(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Decodes an EVT 2.0 RAW file.

    The body is memory-mapped and decoded in blocks of vectorised steps, straight into the returned array.

    Args:
        path: the ``.raw`` file.

    Returns:
        ``(events, meta)``: :data:`EVENT_CD` events in file order (sorted by t for well-formed files) and a dict with
        ``height``, ``width``, ``header`` (the header fields), ``data_offset`` and ``ext_trigger`` (an
        :data:`~opsin.eventflow._events.EXT_TRIGGER` array).

    Raises:
        FormatError: another format or an impossible sensor size in the header, a body that is not a whole number
            of words, or a word of a type EVT 2.0 does not define.
    """
    path = Path(path)
    body = RawBody(path, "2.0", "<u4")
    header = body.header
    track = header.height < 0 or header.width < 0  # no size in the header: the largest coordinates give it
    decoder = _Evt2Decoder(path, header.data_offset, min(body.count, BLOCK_WORDS), track)
    buffer = EventBuffer(body.count)  # one CD word is one event: never grows
    for first, words in body.blocks(BLOCK_WORDS):
        decoder.block(words, first, buffer)
    events = buffer.result()
    height, width = header.height, header.width
    if track and events.size:
        height, width = decoder.max_y + 1, decoder.max_x + 1
    triggers = np.concatenate(decoder.triggers) if decoder.triggers else np.empty(0, dtype=EXT_TRIGGER)
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
