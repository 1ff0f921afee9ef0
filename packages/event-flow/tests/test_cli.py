from __future__ import annotations

import h5py
import numpy as np
import pytest

from opsin.eventflow import cli
from opsin.eventflow.io import H5FeaturesReader, open_events, read_flow_labels


@pytest.mark.slow
def test_synth_then_precompute(tmp_path, capsys):
    raw, feats = tmp_path / "raw", tmp_path / "features"
    args = [
        "synth",
        "--out-dir",
        str(raw),
        "--num-sequences",
        "3",
        "--height",
        "32",
        "--width",
        "32",
        "--duration-us",
        "100000",
        "--delta-t",
        "10000",
        "--seed",
        "4",
    ]
    assert cli.main(args) == 0
    for split, index in (("train", 0), ("val", 1), ("test", 2)):
        assert (raw / split / f"seq_{index:04d}_td.dat").exists()
        assert read_flow_labels(raw / split / f"seq_{index:04d}_flow.h5").flow.shape == (10, 2, 32, 32)
    assert (
        cli.main(
            [
                "precompute",
                str(raw),
                "--out-dir",
                str(feats),
                "--delta-t",
                "10000",
                "--height",
                "16",
                "--width",
                "16",
                "--store-as-uint8",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
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
    assert (
        cli.main(
            ["precompute", str(raw), "--out-dir", str(feats), "--delta-t", "10000", "--height", "16", "--width", "16"]
        )
        == 0
    )
    assert "0 files written, 3 skipped" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == before
    assert (
        cli.main(
            [
                "precompute",
                str(raw / "val"),
                "--out-dir",
                str(tmp_path / "parts"),
                "--delta-t",
                "10000",
                "--max-duration",
                "40000",
                "--processes",
                "2",
            ]
        )
        == 0
    )
    parts = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert parts[:2] == ["seq_0001_0.h5", "seq_0001_1.h5"]
    with H5FeaturesReader(tmp_path / "parts" / "seq_0001_1.h5") as reader:
        assert reader.start_ts == 40_000
        assert reader.num_frames == 4


def test_precompute_errors_exit_2(tmp_path, capsys):
    assert cli.main(["precompute", str(tmp_path / "missing.dat"), "--out-dir", str(tmp_path)]) == 2
    assert "missing.dat" in capsys.readouterr().err
    bad = tmp_path / "bad_td.dat"
    bad.write_bytes(b"% Version 2\n" + bytes([0, 8]) + b"\x00" * 13)
    assert cli.main(["precompute", str(bad), "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad_td.dat" in err
    assert "byte offset 22" in err
    assert (
        cli.main(["precompute", str(bad), "--out-dir", str(tmp_path / "o"), "--preprocess", "diff", "--store-as-uint8"])
        == 2
    )
    assert "signed" in capsys.readouterr().err
