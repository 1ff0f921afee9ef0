from __future__ import annotations

import struct

import numpy as np
import pytest

from opsin.eventflow import EVENT_CD, ConfigError, FormatError
from opsin.eventflow.io import DatReader, DatWriter, open_events, read_dat, write_dat


def make_events(rows):
    """Events from (x, y, p, t) tuples."""
    return np.array(rows, dtype=EVENT_CD).reshape(-1)


def encode_dat(rows, height=480, width=640, ev_type=0, header=True) -> bytes:
    """Per-record encoder written from the published layout: uint32 t, then x | y << 14 | p << 28."""
    out = b""
    if header:
        out += b"% Data file containing Event2D events.\n% Version 2\n% Date 2020-01-01 00:00:00\n"
        out += f"% Height {height}\n% Width {width}\n".encode()
        out += bytes([ev_type, 8])
    for x, y, p, t in rows:
        out += struct.pack("<II", t & 0xFFFFFFFF, x | (y << 14) | (p << 28))
    return out


def test_reader_decodes_bytes_from_the_published_layout(tmp_path):
    rows = [(0, 0, 0, 5), (16383, 1, 1, 6), (3, 16383, 1, 100), (640, 479, 0, 2**32 - 1)]
    path = tmp_path / "a_td.dat"
    path.write_bytes(encode_dat(rows, ev_type=12))
    reader = DatReader(path)
    assert (reader.height, reader.width, reader.ev_type, reader.event_count) == (480, 640, 12, 4)
    ev = reader.load_all()
    assert ev["x"].tolist() == [0, 16383, 3, 640]
    assert ev["y"].tolist() == [0, 1, 16383, 479]
    assert ev["p"].tolist() == [0, 1, 1, 0]
    assert ev["t"].tolist() == [5, 6, 100, 2**32 - 1]
    assert reader.duration_us == 2**32 - 1


def test_round_trip_header_and_types(tmp_path, random_events):
    for ev_type in (0, 12):
        path = tmp_path / f"rt{ev_type}_td.dat"
        before = random_events.copy()
        write_dat(path, random_events, 480, 640, ev_type=ev_type, date="2021-02-03 04:05:06")
        np.testing.assert_array_equal(random_events, before)  # input untouched
        text = path.read_bytes()[:200].decode("latin-1")
        assert "% Date 2021-02-03 04:05:06\n% Height 480\n% Width 640\n" in text
        reader = DatReader(path)
        assert reader.ev_type == ev_type
        assert reader.header["Version"] == "2"
        np.testing.assert_array_equal(reader.load_all(), random_events)


def test_same_arguments_give_identical_bytes(tmp_path, random_events):
    write_dat(tmp_path / "a.dat", random_events, 480, 640, date="2000-01-01 00:00:00")
    write_dat(tmp_path / "b.dat", random_events, 480, 640, date="2000-01-01 00:00:00")
    assert (tmp_path / "a.dat").read_bytes() == (tmp_path / "b.dat").read_bytes()


def test_32bit_wrap_is_unwrapped_and_round_trips(tmp_path):
    base = 2**32 - 30
    rows = [
        (1, 1, 1, base),
        (2, 2, 0, base + 10),
        (3, 3, 1, 2**32 + 5),
        (4, 4, 1, 2**32 + 50),
        (6, 6, 1, 2**32 + 2**31 - 10),
        (7, 7, 0, 2**32 + 2**31 + 2**30),
        (5, 5, 0, 2 * 2**32 + 7),
    ]
    # Bytes written by hand (t stored modulo 2**32, as a camera does).
    hand = tmp_path / "hand.dat"
    hand.write_bytes(encode_dat([(x, y, p, t) for x, y, p, t in rows]))
    expected = [r[3] for r in rows]
    assert read_dat(hand)["t"].tolist() == expected
    # Our writer with wrap=True produces the same bytes and reads back.
    ours = tmp_path / "ours.dat"
    write_dat(ours, make_events(rows), 480, 640, date="2020-01-01 00:00:00", wrap=True)
    assert ours.read_bytes() == hand.read_bytes()
    reader = DatReader(ours)
    assert reader.duration_us == 2 * 2**32 + 7
    reader.seek_time(2**32)
    assert reader.load_delta_t(100)["t"].tolist() == [2**32 + 5, 2**32 + 50]
    assert read_dat(ours, start_ts=base + 5, end_ts=2**32 + 6)["t"].tolist() == [base + 10, 2**32 + 5]
    with pytest.raises(ConfigError, match="32 bits"):
        write_dat(tmp_path / "no.dat", make_events(rows), 480, 640)


def test_seek_and_streaming_reads(tmp_path, random_events):
    path = tmp_path / "s_td.dat"
    write_dat(path, random_events, 480, 640)
    reader = open_events(path)
    t = random_events["t"]
    reader.seek_time(50_000)
    chunk = reader.load_delta_t(20_000)
    np.testing.assert_array_equal(chunk, random_events[(t >= 50_000) & (t < 70_000)])
    nxt = reader.load_delta_t(10_000)
    np.testing.assert_array_equal(nxt, random_events[(t >= 70_000) & (t < 80_000)])
    reader.seek_time(0)
    first = reader.load_n_events(10)
    np.testing.assert_array_equal(first, random_events[:10])
    reader.seek_time(10**9)
    assert reader.load_delta_t(1000).size == 0
    assert reader.done()


def test_missing_geometry_uses_max_coordinates(tmp_path):
    path = tmp_path / "g.dat"
    data = b"% Data file containing Event2D events.\n% Version 2\n" + bytes([0, 8])
    data += struct.pack("<II", 1, 9 | (4 << 14))
    path.write_bytes(data)
    reader = DatReader(path)
    assert (reader.width, reader.height) == (10, 5)


def test_headerless_file_is_type0_from_byte_0(tmp_path):
    path = tmp_path / "raw.dat"
    path.write_bytes(encode_dat([(1, 2, 1, 3)], header=False))
    assert read_dat(path)[["x", "y", "p", "t"]].tolist() == [(1, 2, 1, 3)]


def test_truncated_body_names_file_and_offset(tmp_path):
    path = tmp_path / "cut_td.dat"
    data = encode_dat([(1, 1, 1, 1), (2, 2, 0, 2)])
    path.write_bytes(data[:-3])
    with pytest.raises(FormatError) as info:
        DatReader(path)
    header_len = len(data) - 16
    assert info.value.offset == header_len + 8
    assert str(path) in str(info.value)
    assert f"byte offset {header_len + 8}" in str(info.value)


def test_non_cd_event_type_is_refused(tmp_path):
    path = tmp_path / "trig.dat"
    data = encode_dat([(1, 1, 1, 1)], ev_type=14)
    path.write_bytes(data)
    with pytest.raises(FormatError, match="event type 14") as info:
        DatReader(path)
    assert info.value.offset == len(data) - 10


def test_writer_refuses_unsorted_or_out_of_range(tmp_path):
    with pytest.raises(ConfigError, match="sorted"):
        write_dat(tmp_path / "u.dat", make_events([(1, 1, 1, 10), (1, 1, 1, 5)]), 10, 10)
    with pytest.raises(ConfigError, match="16384"):
        write_dat(tmp_path / "c.dat", make_events([(16384, 1, 1, 10)]), 10, 10)
    assert not (tmp_path / "u.dat").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_streaming_writer_keeps_order_across_calls(tmp_path):
    path = tmp_path / "w.dat"
    with DatWriter(path, 10, 10) as writer:
        writer.write(make_events([(1, 1, 1, 10)]))
        with pytest.raises(ConfigError):
            writer.write(make_events([(1, 1, 1, 5)]))
        writer.write(make_events([(2, 2, 0, 20)]))
    assert read_dat(path)["t"].tolist() == [10, 20]


def test_text_file_named_td_dat_is_refused_in_one_line(tmp_path):
    path = tmp_path / "x_td.dat"
    path.write_bytes(b"opsin notes: this file holds text, not events\n" * 64)  # a whole number of 8-byte records
    assert path.stat().st_size % 8 == 0
    with pytest.raises(FormatError, match="not a DAT file") as info:
        DatReader(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(FormatError):
        open_events(path)


def test_headerless_records_must_look_like_events(tmp_path):
    backwards = tmp_path / "b.dat"
    backwards.write_bytes(encode_dat([(1, 1, 1, 50), (2, 2, 0, 40)], header=False))
    with pytest.raises(FormatError, match="time goes backwards at record 1"):
        DatReader(backwards)
    spare = tmp_path / "s.dat"
    spare.write_bytes(struct.pack("<II", 5, 1 | (1 << 30)))
    with pytest.raises(FormatError, match="unused bits"):
        DatReader(spare)


@pytest.mark.parametrize("line", ["% Height 20000", "% Width 0", "% Height 4x8"])
def test_impossible_header_sizes_are_refused(tmp_path, line):
    path = tmp_path / "h_td.dat"
    good = encode_dat([(1, 1, 1, 1)])
    key = line.split()[1]
    data = good.replace(f"% {key} ".encode() + (b"480" if key == "Height" else b"640"), line.encode())
    assert data != good
    path.write_bytes(data)
    with pytest.raises(FormatError, match=key) as info:
        DatReader(path)
    assert str(path) in str(info.value)


def test_wraps_found_while_decoding_equal_those_of_the_seek_index(tmp_path, monkeypatch):
    # A full read finds the wraps on the fly, a seek builds the index; both must agree, also across blocks.
    from opsin.eventflow.io import dat

    t = np.cumsum(np.full(300, 2**30 - 7, dtype=np.int64))  # about one wrap every 4 records
    ev = np.zeros(t.size, dtype=EVENT_CD)
    ev["t"] = t
    ev["x"] = np.arange(t.size) % 640
    path = tmp_path / "w_td.dat"
    write_dat(path, ev, 480, 640, wrap=True)
    for block in (1 << 16, 7, 1):
        monkeypatch.setattr(dat, "_DECODE_BLOCK", block)
        reader = DatReader(path)
        np.testing.assert_array_equal(reader.load_all(), ev)
        np.testing.assert_array_equal(reader.read_range(int(t[100]), int(t[200])), ev[100:200])
        reader.seek_event(57)
        np.testing.assert_array_equal(reader.load_n_events(60), ev[57:117])
