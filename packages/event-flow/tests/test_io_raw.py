from __future__ import annotations

import struct

import numpy as np
import pytest

from opsin.eventflow import EVENT_CD, FormatError
from opsin.eventflow.io import open_events, read_evt2, read_evt3, read_raw, write_evt2

EVT2_HEADER = b"% evt 2.0\n% format EVT2;height=480;width=640\n% geometry 640x480\n% end\n"
EVT3_HEADER = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"


def make_events(rows):
    """Events from (x, y, p, t) tuples."""
    return np.array(rows, dtype=EVENT_CD).reshape(-1)


def evt2_cd(x, y, p, t_lsb):
    return struct.pack("<I", (p << 28) | (t_lsb << 22) | (x << 11) | y)


def evt2_time_high(t):
    return struct.pack("<I", (0x8 << 28) | ((t >> 6) & 0x0FFFFFFF))


def evt2_encode(rows):
    """Per-event encoder from the EVT 2.0 layout: a TIME_HIGH whenever t >> 6 changes, then CD words."""
    out, high = b"", None
    for x, y, p, t in rows:
        if t >> 6 != high:
            high = t >> 6
            out += evt2_time_high(t)
        out += evt2_cd(x, y, p, t & 0x3F)
    return out


def test_evt2_reader_against_hand_encoded_words(tmp_path):
    body = evt2_cd(5, 5, 1, 3)  # before the first TIME_HIGH: dropped
    body += evt2_time_high(64 * 1000)
    body += evt2_cd(1, 2, 0, 7) + evt2_cd(2047, 2047, 1, 63)
    body += struct.pack("<I", (0xA << 28) | (9 << 22) | (3 << 8) | 1)  # EXT_TRIGGER id 3 value 1
    body += struct.pack("<I", 0xD << 28) + struct.pack("<5I", 0x1FFFFFFF, 2, 3, 4, 5)  # IMU + 5 payload words
    body += struct.pack("<I", 0xE << 28) + struct.pack("<I", 0xF << 28)  # OTHER, CONTINUED
    body += evt2_time_high(64 * 1001) + evt2_cd(10, 11, 1, 0)
    path = tmp_path / "a.raw"
    path.write_bytes(EVT2_HEADER + body)
    events, meta = read_evt2(path)
    assert (meta["height"], meta["width"]) == (480, 640)
    assert events[["x", "y", "p", "t"]].tolist() == [(1, 2, 0, 64007), (2047, 2047, 1, 64063), (10, 11, 1, 64064)]
    assert meta["ext_trigger"][["p", "t", "id"]].tolist() == [(1, 64009, 3)]


def test_evt2_round_trip_and_2_34_wrap(tmp_path, random_events):
    ev = random_events.copy()
    ev["x"] %= 2048
    ev["y"] %= 2048
    path = tmp_path / "r.raw"
    write_evt2(path, ev, 480, 640)
    back, _meta = read_evt2(path)
    np.testing.assert_array_equal(back, ev)
    assert path.read_bytes().startswith(b"% evt 2.0\n% format EVT2;height=480;width=640\n")
    # Our writer equals the hand encoder.
    assert path.read_bytes().split(b"% end\n", 1)[1] == evt2_encode(ev[["x", "y", "p", "t"]].tolist())
    # Time beyond 2**34 us: TIME_HIGH stores bits 33..6 only; the reader counts the loop.
    # (TIME_HIGH words come every 64 us in real streams, so a loop shows as a drop of almost 2**34.)
    rows = [(1, 1, 1, 2**34 - 100), (2, 2, 0, 2**34 - 1), (3, 3, 1, 2**34 + 70), (4, 4, 0, 2**34 + 500)]
    wrapped = tmp_path / "w.raw"
    wrapped.write_bytes(EVT2_HEADER + evt2_encode([(x, y, p, t % 2**34) for x, y, p, t in rows]))
    assert read_evt2(wrapped)[0]["t"].tolist() == [r[3] for r in rows]


def test_evt2_corrupt_word_and_truncation_name_offsets(tmp_path):
    body = evt2_time_high(0) + evt2_cd(1, 1, 1, 1) + struct.pack("<I", 0x5 << 28)
    path = tmp_path / "bad.raw"
    path.write_bytes(EVT2_HEADER + body)
    with pytest.raises(FormatError, match="type 0x5") as info:
        read_evt2(path)
    assert info.value.offset == len(EVT2_HEADER) + 8
    assert str(path) in str(info.value)
    cut = tmp_path / "cut.raw"
    cut.write_bytes(EVT2_HEADER + body[:-2])
    with pytest.raises(FormatError, match="truncated") as info:
        read_evt2(cut)
    assert info.value.offset == len(EVT2_HEADER) + 8


def evt3(kind, value):
    return struct.pack("<H", (kind << 12) | value)


def test_evt3_reader_against_hand_encoded_words(tmp_path):
    body = evt3(0x0, 9) + evt3(0x2, 4)  # before TIME_HIGH: dropped
    body += evt3(0x8, 0x123)  # base = 0x123 << 12
    body += evt3(0x6, 0x010)  # t = base + 16
    body += evt3(0x0, 100)  # y = 100
    body += evt3(0x2, (1 << 11) | 7)  # x = 7, ON
    body += evt3(0x3, 20)  # base_x 20, OFF
    body += evt3(0x4, 0b100000000101)  # x = 20, 22, 31
    body += evt3(0x5, 0b10000001)  # x = 32, 39
    body += evt3(0xA, (2 << 8) | 1)  # trigger id 2 value 1
    body += evt3(0x7, 0xFFF) + evt3(0xE, 1) + evt3(0xD, 0)  # skipped
    body += evt3(0x6, 0x020) + evt3(0x0, 5) + evt3(0x2, 1)
    path = tmp_path / "e3.raw"
    path.write_bytes(EVT3_HEADER + body)
    events, meta = read_evt3(path)
    t0 = (0x123 << 12) + 16
    assert events[["x", "y", "p", "t"]].tolist() == [
        (7, 100, 1, t0),
        (20, 100, 0, t0),
        (22, 100, 0, t0),
        (31, 100, 0, t0),
        (32, 100, 0, t0),
        (39, 100, 0, t0),
        (1, 5, 0, (0x123 << 12) + 32),
    ]
    assert (meta["height"], meta["width"]) == (720, 1280)
    assert meta["ext_trigger"][["p", "t", "id"]].tolist() == [(1, t0, 2)]
    # open_events dispatches on the header
    assert open_events(path).event_count == 7
    assert read_raw(path)[0].size == 7


def test_evt3_wrap_after_2_24(tmp_path):
    body = evt3(0x8, 0xFFF) + evt3(0x6, 0xFF0) + evt3(0x0, 1) + evt3(0x2, 1)
    body += evt3(0x8, 0x000) + evt3(0x6, 0x005) + evt3(0x2, 2)
    path = tmp_path / "w3.raw"
    path.write_bytes(EVT3_HEADER + body)
    assert read_evt3(path)[0]["t"].tolist() == [(0xFFF << 12) + 0xFF0, 2**24 + 5]


def test_evt3_corrupt_word(tmp_path):
    path = tmp_path / "b3.raw"
    path.write_bytes(EVT3_HEADER + evt3(0x8, 1) + evt3(0x9, 1))
    with pytest.raises(FormatError, match="0x9") as info:
        read_evt3(path)
    assert info.value.offset == len(EVT3_HEADER) + 2
    odd = tmp_path / "odd.raw"
    odd.write_bytes(EVT3_HEADER + evt3(0x8, 1) + b"\x01")
    with pytest.raises(FormatError, match="truncated"):
        read_evt3(odd)


def test_evt2_written_events_stream_through_open_events(tmp_path):
    ev = make_events([(1, 1, 1, 10), (2, 2, 0, 2000), (3, 3, 1, 4000)])
    path = tmp_path / "s.raw"
    write_evt2(path, ev, 8, 8)
    reader = open_events(path)
    reader.seek_time(1000)
    assert reader.load_delta_t(2000)["t"].tolist() == [2000]
