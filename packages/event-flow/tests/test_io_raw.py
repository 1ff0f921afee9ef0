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


# -- per-word reference decoders, written from the format descriptions, to check the vectorised readers -----------

EVT2_LOOP = (2**34 - 64) - 640
EVT3_LOOP = (2**24 - 4096) - 40960


def reference_evt2(words):
    events, triggers = [], []
    base, previous, loops, i = None, None, 0, 0
    while i < len(words):
        w = words[i]
        kind = w >> 28
        if kind == 0xD:  # IMU: skip it and its 5 payload words
            i += 6
            continue
        if kind == 0x8:
            raw = (w & 0x0FFFFFFF) << 6
            if previous is not None and previous - raw >= EVT2_LOOP:
                loops += 1
            previous, base = raw, raw + loops * 2**34
        elif base is not None and kind <= 1:
            events.append(((w >> 11) & 0x7FF, w & 0x7FF, kind, base + ((w >> 22) & 0x3F)))
        elif base is not None and kind == 0xA:
            triggers.append((w & 1, base + ((w >> 22) & 0x3F), (w >> 8) & 0x1F))
        i += 1
    return events, triggers


def reference_evt3(words):
    events, triggers = [], []
    base = previous = t = y = base_x = None
    loops = base_p = 0
    for w in words:
        kind, value = w >> 12, w & 0xFFF
        if kind == 0x8:
            raw = value << 12
            if previous is not None and previous - raw >= EVT3_LOOP:
                loops += 1
            previous = raw
            base = t = raw + loops * 2**24
        elif base is None:
            continue  # before the first TIME_HIGH
        elif kind == 0x6:
            t = base + value
        elif kind == 0x0:
            y = w & 0x7FF
        elif kind == 0x2 and y is not None:
            events.append((w & 0x7FF, y, (w >> 11) & 1, t))
        elif kind == 0x3:
            base_x, base_p = w & 0x7FF, (w >> 11) & 1
        elif kind in (0x4, 0x5):
            width = 12 if kind == 0x4 else 8
            if base_x is not None:
                if y is not None:
                    events += [(base_x + i, y, base_p, t) for i in range(width) if value >> i & 1]
                base_x += width
        elif kind == 0xA:
            triggers.append((w & 1, t, (w >> 8) & 0xF))
    events.sort(key=lambda e: e[3])  # stable
    return events, triggers


def random_evt2_words(gen, n_high):
    """A stream with junk before the first TIME_HIGH, IMU payloads of any bits, triggers and a 2**34 us loop."""
    words = [int(gen.integers(0, 2)) << 28 | int(gen.integers(0, 1 << 22)) for _ in range(3)]
    high = (1 << 28) - n_high // 2  # the 28-bit TIME_HIGH field wraps half way
    for _ in range(n_high):
        words.append(0x8 << 28 | high % (1 << 28))
        high += 1
        for _ in range(int(gen.integers(0, 12))):
            roll = gen.random()
            if roll < 0.8:
                words.append(int(gen.integers(0, 2)) << 28 | int(gen.integers(0, 1 << 28)))
            elif roll < 0.88:
                words.append(0xA << 28 | int(gen.integers(0, 1 << 28)))
            elif roll < 0.94:
                words += [0xD << 28] + [int(v) for v in gen.integers(0, 2**32, 5, dtype=np.uint64)]
            else:
                words.append(int(gen.choice([0xE, 0xF])) << 28 | int(gen.integers(0, 1 << 28)))
    return words


def random_evt3_words(gen, n_high):
    """A stream with state before the first TIME_HIGH, vectors, TIME_LOW steps back and a 2**24 us loop."""
    words = [0x0 << 12 | 7, 0x2 << 12 | 3, 0x3 << 12 | 5, 0x4 << 12 | 0xFFF, 0x6 << 12 | 9]
    high = 4096 - n_high // 2  # the 12-bit TIME_HIGH field wraps half way
    for _ in range(n_high):
        words.append(0x8 << 12 | high % 4096)
        high += 1
        low = 0
        for _ in range(int(gen.integers(0, 14))):
            roll = gen.random()
            if roll < 0.15:
                low = max(0, min(4095, low + int(gen.integers(-20, 200))))  # may step back a little
                words.append(0x6 << 12 | low)
            elif roll < 0.3:
                words.append(0x0 << 12 | int(gen.integers(0, 1 << 12)))
            elif roll < 0.6:
                words.append(0x2 << 12 | int(gen.integers(0, 1 << 12)))
            elif roll < 0.7:
                words.append(0x3 << 12 | int(gen.integers(0, 1 << 12)))
            elif roll < 0.85:
                words.append(int(gen.choice([0x4, 0x5])) << 12 | int(gen.integers(0, 1 << 12)))
            elif roll < 0.9:
                words.append(0xA << 12 | int(gen.integers(0, 1 << 12)))
            else:
                words.append(int(gen.choice([0x7, 0xB, 0xC, 0xD, 0xE, 0xF])) << 12 | int(gen.integers(0, 1 << 12)))
    return words


@pytest.mark.parametrize("block", [None, 1, 7, 100])
def test_evt2_matches_the_per_word_reference_across_blocks(tmp_path, monkeypatch, block):
    from opsin.eventflow.io import evt2

    if block:  # the decoder state (time base, loops, IMU payload) must carry over block boundaries
        monkeypatch.setattr(evt2, "BLOCK_WORDS", block)
    words = random_evt2_words(np.random.default_rng(5), 400)
    path = tmp_path / "r2.raw"
    path.write_bytes(EVT2_HEADER + np.array(words, "<u4").tobytes())
    events, meta = read_evt2(path)
    expected, triggers = reference_evt2(words)
    assert events.dtype == EVENT_CD
    assert events[["x", "y", "p", "t"]].tolist() == expected
    assert meta["ext_trigger"][["p", "t", "id"]].tolist() == triggers
    assert events["t"].max() > 2**34  # the loop was counted


@pytest.mark.parametrize("block", [None, 1, 5, 64])
def test_evt3_matches_the_per_word_reference_across_blocks(tmp_path, monkeypatch, block):
    from opsin.eventflow.io import evt3

    if block:  # row, time, vector base and loops must carry over block boundaries
        monkeypatch.setattr(evt3, "BLOCK_WORDS", block)
    words = random_evt3_words(np.random.default_rng(6), 300)
    path = tmp_path / "r3.raw"
    path.write_bytes(EVT3_HEADER + np.array(words, "<u2").tobytes())
    events, meta = read_evt3(path)
    expected, triggers = reference_evt3(words)
    assert events.dtype == EVENT_CD
    assert events[["x", "y", "p", "t"]].tolist() == expected
    assert meta["ext_trigger"][["p", "t", "id"]].tolist() == triggers
    assert events["t"].max() > 2**24


def test_raw_header_sizes_and_text_files_are_refused_before_decoding(tmp_path):
    big = tmp_path / "big.raw"
    big.write_bytes(b"% evt 3.0\n% format EVT3;height=70000;width=1280\n% end\n" + evt3(0x8, 1))
    with pytest.raises(FormatError, match="1280x70000") as info:
        read_evt3(big)
    assert str(big) in str(info.value)
    text = tmp_path / "notes.raw"
    text.write_bytes(b"these are notes, not events\n" * 8)
    with pytest.raises(FormatError, match=r"undefined in EVT 2\.0") as info:
        open_events(text)
    assert "\n" not in str(info.value)
    assert str(text) in str(info.value)


# -- the two real recordings of the shared fixtures ------------------------------------------------------------


@pytest.fixture
def raw_samples(fixtures_root):
    folder = fixtures_root / "prophesee-raw-samples"
    if not folder.is_dir():
        pytest.skip(f"real Prophesee recordings not found in {folder} (set OPSIN_FIXTURES)")
    return folder


def test_real_evt2_recording(raw_samples):
    path = raw_samples / "evt2_sample.raw"
    events, meta = read_evt2(path)
    assert events.size == 539_481
    assert (meta["width"], meta["height"]) == (600, 476)  # no geometry line: from the largest coordinates
    assert meta["header"]["evt"] == "2.0"
    assert set(np.unique(events["p"]).tolist()) == {0, 1}
    assert (np.diff(events["t"]) >= 0).all()
    assert (int(events["t"][0]), int(events["t"][-1])) == (1_317_888, 1_367_888)
    # The first words against the per-word reference.
    data = path.read_bytes()
    words = np.frombuffer(data, "<u4", offset=meta["data_offset"])[:20_000].tolist()
    expected, _ = reference_evt2(words)
    assert events[: len(expected)][["x", "y", "p", "t"]].tolist() == expected
    reader = open_events(path)
    assert (reader.event_count, reader.width, reader.height) == (539_481, 600, 476)


def test_real_evt3_recording(raw_samples):
    path = raw_samples / "evt3_sample.raw"
    events, meta = read_evt3(path)
    assert events.size == 219_596
    assert (meta["width"], meta["height"]) == (1280, 720)
    assert meta["header"]["evt"] == "3.0"
    assert set(np.unique(events["p"]).tolist()) == {0, 1}
    assert int(events["x"].max()) < 1280
    assert int(events["y"].max()) < 720
    # t = TIME_HIGH << 12 | TIME_LOW with TIME_HIGH in 2861..2863: no TIME_LOW step back is taken for a wrap.
    assert (int(events["t"][0]), int(events["t"][-1])) == (11_718_656, 11_727_457)
    assert (np.diff(events["t"]) >= 0).all()
    words = np.frombuffer(path.read_bytes(), "<u2", offset=meta["data_offset"])
    high = words[words >> 12 == 0x8] & 0xFFF
    assert (high.size, int(high.min()), int(high.max())) == (551, 2861, 2863)
    expected, _ = reference_evt3(words[:20_000].tolist())
    assert events[: len(expected)][["x", "y", "p", "t"]].tolist() == expected
    assert open_events(path).event_count == 219_596
