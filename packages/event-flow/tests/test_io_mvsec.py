"""MVSEC conversion against files built here in MVSEC's layout, with a known constant motion as ground truth."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from _cli_run import one_error_line, run

from opsin.eventflow._evaluate import labelled_recordings
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io import mvsec as mvsec_io
from opsin.eventflow.io import read_dat, read_flow_labels
from opsin.eventflow.io.mvsec import MVSEC_SENSOR_SIZE, convert_mvsec, mvsec_name

VELOCITY = (36.0, -21.0)  # px/s, the same at every pixel: the displacement over [a, b) is VELOCITY * (b - a)
T_BASE = 1_506_117_900.123456  # an MVSEC-like ROS time (s)
GT_HZ, APS_HZ = 20.0, 31.0  # unlike rates, so APS intervals straddle GT frame boundaries


def _write_mvsec(
    folder: Path,
    name: str,
    *,
    size: tuple[int, int] = MVSEC_SENSOR_SIZE,
    duration: float = 0.6,
    events: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[Path, Path, np.ndarray]:
    """NAME_data.hdf5 and NAME_gt.hdf5 in MVSEC's layout; returns their paths and the (N, 4) event rows."""
    h, w = size
    rng = np.random.default_rng(seed)
    if events is None:
        n = 4000
        t = np.sort(T_BASE + 0.002 + rng.uniform(0.0, duration, n))
        events = np.stack([rng.integers(0, w, n), rng.integers(0, h, n), t, rng.choice([-1.0, 1.0], n)], axis=1)
    data_path, gt_path = folder / f"{name}_data.hdf5", folder / f"{name}_gt.hdf5"
    aps_ts = T_BASE + 0.011 + np.arange(int(duration * APS_HZ)) / APS_HZ
    with h5py.File(data_path, "w") as fh:
        fh["davis/left/events"] = events.astype(np.float64)
        fh["davis/left/image_raw"] = np.zeros((aps_ts.size, h, w), dtype=np.uint8)
        fh["davis/left/image_raw_ts"] = aps_ts
    gt_ts = T_BASE + np.arange(int(duration * GT_HZ) + 1) / GT_HZ
    flow = np.empty((gt_ts.size, 2, h, w), dtype=np.float64)
    for i, span in enumerate(np.diff(gt_ts)):
        flow[i, 0], flow[i, 1] = VELOCITY[0] * span, VELOCITY[1] * span
    flow[-1] = 999.0  # the last frame has no end time: it must never reach a label
    with h5py.File(gt_path, "w") as fh:
        fh["davis/left/flow_dist"] = flow
        fh["davis/left/flow_dist_ts"] = gt_ts
    return data_path, gt_path, events


def _expected_intervals(data_path: Path, gt_path: Path, t0: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(data_path) as fh:
        aps = np.rint((fh["davis/left/image_raw_ts"][:] - t0) * 1e6).astype(np.int64)
    with h5py.File(gt_path) as fh:
        gt = np.rint((fh["davis/left/flow_dist_ts"][:] - t0) * 1e6).astype(np.int64)
    starts, ends = aps[:-frames], aps[frames:]
    covered = (starts >= max(0, gt[0])) & (ends <= gt[-1])
    return starts[covered], ends[covered]


def test_name_of_a_sequence() -> None:
    assert mvsec_name("/d/outdoor_day1_data.hdf5") == "outdoor_day1"
    assert mvsec_name("indoor_flying2_gt.hdf5") == "indoor_flying2"


def test_events_round_trip_rebased_to_microseconds(tmp_path: Path) -> None:
    data_path, _, rows = _write_mvsec(tmp_path, "indoor_flying1")
    done = convert_mvsec(data_path, tmp_path / "out", quiet=True)
    events = read_dat(done.events_path)
    assert done.events == events.size == rows.shape[0]
    assert (done.height, done.width) == MVSEC_SENSOR_SIZE
    assert done.t0_s == rows[0, 2]
    np.testing.assert_array_equal(events["x"], rows[:, 0])
    np.testing.assert_array_equal(events["y"], rows[:, 1])
    np.testing.assert_array_equal(events["p"], (rows[:, 3] > 0).astype(int))
    np.testing.assert_array_equal(events["t"], np.rint((rows[:, 2] - rows[0, 2]) * 1e6).astype(np.int64))
    assert events["t"][0] == 0


@pytest.mark.parametrize("frames", [1, 4])
def test_labels_are_the_known_motion_over_aps_intervals(tmp_path: Path, frames: int) -> None:
    data_path, gt_path, rows = _write_mvsec(tmp_path, "indoor_flying1")
    done = convert_mvsec(data_path, tmp_path / "out", frames=frames, quiet=True)
    assert done.labels_path == tmp_path / "out" / "indoor_flying1_flow.h5"
    assert done.hood_row is None  # indoor: no hood
    labels = read_flow_labels(done.labels_path)
    starts, ends = _expected_intervals(data_path, gt_path, rows[0, 2], frames)
    assert done.labels == labels.flow.shape[0] == starts.size > 5
    np.testing.assert_array_equal(labels.start_ts, starts)
    np.testing.assert_array_equal(labels.end_ts, ends)
    seconds = (ends - starts) / 1e6
    # inside one GT frame the flow is scaled, across several it is carried through them: exact for this motion
    for c in (0, 1):
        expected = VELOCITY[c] * seconds[:, None, None]
        interior = labels.flow[:, c, 8:-8, 8:-8]
        assert np.abs(interior - expected).max() < 2e-3
        edge_ok = np.isinf(labels.flow[:, c]) | (np.abs(labels.flow[:, c] - expected) < 2e-3)
        assert edge_ok.all()  # near the border a carried position may leave the image: invalid, never wrong
    assert labels.attrs["mvsec_frames"] == frames
    assert labels.attrs["mvsec_t0_s"] == rows[0, 2]
    assert (labels.event_input_height, labels.event_input_width) == MVSEC_SENSOR_SIZE
    assert labelled_recordings(tmp_path / "out") == [(done.events_path, done.labels_path)]


def test_outdoor_sequences_mask_the_hood(tmp_path: Path) -> None:
    data_path, _, _ = _write_mvsec(tmp_path, "outdoor_day1")
    done = convert_mvsec(data_path, tmp_path / "out", quiet=True)
    assert done.hood_row == 190
    flow = read_flow_labels(done.labels_path).flow  # type: ignore[arg-type]
    assert np.isinf(flow[:, :, 190:]).all()
    assert np.isfinite(flow[:, :, 8:190, 8:-8]).all()  # (a carried position may leave the image at the border)
    kept = convert_mvsec(data_path, tmp_path / "none", hood_row=None, quiet=True)
    assert np.isfinite(read_flow_labels(kept.labels_path).flow[:, :, 8:-8, 8:-8]).all()  # type: ignore[arg-type]
    own = convert_mvsec(data_path, tmp_path / "own", hood_row=100, quiet=True)
    own_flow = read_flow_labels(own.labels_path).flow  # type: ignore[arg-type]
    assert np.isinf(own_flow[:, :, 100:]).all()
    assert np.isfinite(own_flow[:, :, 8:100, 8:-8]).all()


def test_events_only_without_ground_truth(tmp_path: Path) -> None:
    data_path, gt_path, _ = _write_mvsec(tmp_path, "indoor_flying3", size=(40, 56))
    gt_path.unlink()
    done = convert_mvsec(data_path, tmp_path / "out", quiet=True)
    assert done.labels_path is None
    assert done.labels == 0
    assert (done.height, done.width) == (40, 56)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["indoor_flying3_td.dat"]


def test_unsorted_events_across_chunks_fail_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, rows = _write_mvsec(tmp_path, "scratch", size=(40, 56))
    rows = rows.copy()
    rows[1000, 2] = rows[999, 2] - 1e-3  # the first row of the second chunk goes back in time
    data_path, _, _ = _write_mvsec(tmp_path, "indoor_flying1", size=(40, 56), events=rows)
    monkeypatch.setattr(mvsec_io, "CHUNK_EVENTS", 1000)
    with pytest.raises(FormatError, match="not sorted by time: row 1000"):
        convert_mvsec(data_path, tmp_path / "out", quiet=True)
    assert list((tmp_path / "out").glob("*")) == []


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda fh: fh.__delitem__("davis/left/events"), "no dataset 'davis/left/events'"),
        (lambda fh: fh["davis/left/events"].__setitem__((3, 0), 500.0), "event row 3 is"),
        (lambda fh: fh["davis/left/events"].__setitem__((7, 3), 0.5), "event row 7 is"),
        (lambda fh: fh.__delitem__("davis/left/image_raw_ts"), "no dataset 'davis/left/image_raw_ts'"),
    ],
)
def test_broken_data_files_name_the_problem(tmp_path: Path, edit, needle: str) -> None:
    data_path, _, _ = _write_mvsec(tmp_path, "indoor_flying1", size=(40, 56))
    with h5py.File(data_path, "r+") as fh:
        edit(fh)
    with pytest.raises(FormatError, match=needle) as info:
        convert_mvsec(data_path, tmp_path / "out", quiet=True)
    assert str(data_path) in str(info.value)
    if "image_raw_ts" in needle:  # a header problem: found before any file is written
        assert list((tmp_path / "out").glob("*")) == []


def test_ground_truth_of_another_size_is_refused_before_writing(tmp_path: Path) -> None:
    data_path, gt_path, _ = _write_mvsec(tmp_path, "indoor_flying1", size=(40, 56))
    (tmp_path / "other").mkdir()
    _, other_gt, _ = _write_mvsec(tmp_path / "other", "other_size", size=(30, 56))
    with pytest.raises(FormatError, match="flow frames are 56x30 but the events' sensor is 56x40"):
        convert_mvsec(data_path, tmp_path / "out", gt_path=other_gt, quiet=True)
    assert list((tmp_path / "out").glob("*")) == []
    with pytest.raises(ConfigError, match="frames must be at least 1"):
        convert_mvsec(data_path, tmp_path / "out", frames=0, quiet=True)
    with pytest.raises(ConfigError, match="hood_row must be in"):
        convert_mvsec(data_path, tmp_path / "out", hood_row=40, quiet=True)
    assert gt_path.exists()


def test_ground_truth_of_another_recording_is_refused_before_writing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _, _, rows = _write_mvsec(tmp_path / "a", "indoor_flying1", size=(40, 56))
    rows = rows.copy()
    rows[:, 2] += 3600.0  # the events of a recording made an hour later
    late_data, _, _ = _write_mvsec(tmp_path, "indoor_flying1", size=(40, 56), events=rows)
    with pytest.raises(FormatError, match="do not overlap the events'"):
        convert_mvsec(late_data, tmp_path / "out", quiet=True)
    assert list((tmp_path / "out").glob("*")) == []


def test_cli_converts_and_reports(tmp_path: Path) -> None:
    data_path, _, rows = _write_mvsec(tmp_path, "outdoor_day2", size=(40, 56))
    code, out, _ = run(["convert-mvsec", str(data_path), "--out-dir", str(tmp_path / "out"), "--frames", "4"])
    assert code == 0, out
    assert f"{rows.shape[0]} events at 56x40" in out
    assert "over 4 APS frame(s) each, no hood mask" in out  # 40 rows: no hood on this sensor
    assert (tmp_path / "out" / "outdoor_day2_flow.h5").exists()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--hood-row", "low"], 2, "--hood-row"),
        (["--frames", "0"], 2, "--frames"),
        (["--gt", "nope_gt.hdf5"], 4, "nope_gt.hdf5"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    data_path, _, _ = _write_mvsec(tmp_path, "indoor_flying1", size=(40, 56))
    got, _, err = run(["convert-mvsec", str(data_path), "--out-dir", str(tmp_path / "out"), *args])
    assert got == code, err
    assert needle in one_error_line(err)


def test_cli_text_file_is_a_format_error(tmp_path: Path) -> None:
    fake = tmp_path / "indoor_flying1_data.hdf5"
    fake.write_text("not hdf5")
    code, _, err = run(["convert-mvsec", str(fake), "--out-dir", str(tmp_path / "out")])
    line = one_error_line(err)
    assert "not a readable HDF5 file" in line
    assert str(fake) in line
    assert code == 2
