from __future__ import annotations

import h5py
import numpy as np
import pytest
from _cli_run import one_error_line, run

from opsin.eventflow import cli
from opsin.eventflow.io import H5FeaturesReader, open_events, read_flow_labels

# Every registered subcommand (others may be added by later modules); these must be among them.
SUBCOMMANDS = sorted(cli.main.commands)
BUILT = {"synth", "precompute", "fit", "validate", "test", "evaluate", "export", "infer", "demo", "convert-mvsec"}


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(sub):
    code, out, _ = run([sub, "--help"])
    assert code == 0
    assert "usage" in out.lower()


def test_group_lists_subcommands_and_version():
    assert set(SUBCOMMANDS) >= BUILT
    code, out, _ = run(["--help"])
    assert code == 0
    for sub in SUBCOMMANDS:
        assert sub in out
    code, out, _ = run(["synth", "--version"])
    assert code == 0
    assert "0." in out


@pytest.fixture
def bad_dat(tmp_path):
    bad = tmp_path / "bad_td.dat"
    bad.write_bytes(b"% Version 2\n" + bytes([0, 8]) + b"\x00" * 13)
    return bad


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["synth", "--out-dir", "{tmp}/s", "--num-sequences", "0"], 2, "--num-sequences"),
        (["synth", "--out-dir", "{tmp}/s", "--num-sequences", "1", "--height", "0"], 2, "--height"),
        (["synth", "--out-dir", "{tmp}/s", "--num-sequences", "1", "--delta-t", "0"], 2, "--delta-t"),
        (["synth", "--out-dir", "{tmp}/s", "--num-sequences", "1", "--preset", "loud"], 2, "--preset"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--height", "0"], 2, "--height"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--delta-t", "0"], 2, "--delta-t"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--workers", "0"], 2, "--workers"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--executor", "bogus://x"], 2, "bogus://x"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--preprocess-kwargs", "{{x"], 2, "--preprocess-kwargs"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--preprocess-kwargs", "[1]"], 2, "JSON object"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--preprocess", "nope"], 2, "nope"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--max-duration", "15000", "--delta-t", "10000"], 2, "mult"),
        (["precompute", "{tmp}/missing.dat", "--out-dir", "{tmp}/o"], 4, "missing.dat"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o"], 2, "byte offset 22"),
        (["precompute", "{bad}", "--out-dir", "{tmp}/o", "--preprocess", "diff", "--store-as-uint8"], 2, "signed"),
        (["precompute", "{tmp}/empty", "--out-dir", "{tmp}/o"], 4, "no event file"),
        (["synth", "--log-level", "LOUD"], 2, "--log-level"),
        (["nope"], 2, "No such command"),
    ],
)
def test_bad_input_prints_one_error_line(tmp_path, bad_dat, args, code, needle):
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path, bad=bad_dat) for a in args]
    got, _, err = run(args)
    line = one_error_line(err)
    assert got == code, err
    assert needle in line
    if needle == "byte offset 22":
        assert "bad_td.dat" in line


@pytest.mark.slow
def test_synth_then_precompute(tmp_path):
    raw, feats = tmp_path / "raw", tmp_path / "features"
    synth = ["synth", "--out-dir", str(raw), "--num-sequences", "3", "--height", "32", "--width", "32"]
    code, out, err = run([*synth, "--duration-us", "100000", "--delta-t", "10000", "--seed", "4"])
    assert code == 0, err
    assert out.count("events,") == 3
    for split, index in (("train", 0), ("val", 1), ("test", 2)):
        assert (raw / split / f"seq_{index:04d}_td.dat").exists()
        assert read_flow_labels(raw / split / f"seq_{index:04d}_flow.h5").flow.shape == (10, 2, 32, 32)
    pre = ["precompute", str(raw), "--out-dir", str(feats), "--delta-t", "10000", "--height", "16", "--width", "16"]
    code, out, err = run([*pre, "--store-as-uint8"])
    assert code == 0, err
    assert "3 recordings, 3 files written, 0 skipped" in out
    path = feats / "train" / "seq_0000.h5"
    with H5FeaturesReader(path) as reader:
        assert reader.preprocess == "event_cube"
        assert reader.shape == (6, 16, 16)
        assert (reader.event_input_height, reader.event_input_width) == (32, 32)
        events = open_events(raw / "train" / "seq_0000_td.dat")
        assert reader.num_frames == events.duration_us // 10_000 + 1
        rows = reader.read_rows(0, reader.num_frames)
    assert rows.max() > 0
    assert rows.min() >= 0
    # Mass check of one row against the events of its window (k = 1 / (5 * 4) at ds = 1), within uint8 rounding.
    events.seek_time(30_000)
    n = events.load_delta_t(10_000).size
    assert 0 < rows[3].sum() <= n / 20 + 6 * 256 / 255
    with h5py.File(path) as fh:
        assert fh["data"].dtype == np.uint8
        assert bool(fh["data"].attrs["store_as_uint8"])
    before = path.stat().st_mtime_ns
    code, out, _ = run(pre)
    assert code == 0
    assert "0 files written, 3 skipped" in out
    assert path.stat().st_mtime_ns == before
    parts_dir = tmp_path / "parts"
    split = ["--delta-t", "10000", "--max-duration", "40000", "--workers", "2"]
    code, _, err = run(["precompute", str(raw / "val"), "--out-dir", str(parts_dir), *split])
    assert code == 0, err
    parts = sorted(p.name for p in parts_dir.iterdir())
    assert parts[:2] == ["seq_0001_0.h5", "seq_0001_1.h5"]
    with H5FeaturesReader(parts_dir / "seq_0001_1.h5") as reader:
        assert reader.start_ts == 40_000
        assert reader.num_frames == 4
