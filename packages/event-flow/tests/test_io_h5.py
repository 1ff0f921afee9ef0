from __future__ import annotations

import h5py
import numpy as np
import pytest

from opsin.eventflow import EVENT_CD, ConfigError, FormatError
from opsin.eventflow.io import (
    FlowLabels,
    H5FeaturesReader,
    check_flow_file,
    flow_for_interval,
    label_path_for,
    open_events,
    read_flow_labels,
    read_h5_events,
    write_features,
    write_flow_labels,
    write_h5_events,
)


def make_events(rows):
    """Events from (x, y, p, t) tuples."""
    return np.array(rows, dtype=EVENT_CD).reshape(-1)


def test_h5_events_round_trip_index_and_attrs(tmp_path, random_events):
    path = tmp_path / "ev_td.h5"
    write_h5_events(path, random_events, 480, 640)
    with h5py.File(path, "r") as fh:
        assert fh.attrs["geometry"] == "640x480"
        assert fh.attrs["version"] == "1.0"
        assert str(fh.attrs["generator"]).startswith("opsin-event-flow ")
        ds = fh["CD/events"]
        assert ds.chunks == (16384,)
        assert ds.compression == "gzip"
        assert ds.shuffle
        assert ds.maxshape == (None,)
        index = fh["CD/indexes"][...]
    t = random_events["t"]
    assert index.shape[0] == t[-1] // 2000 + 2
    for k in (0, 1, 17, index.shape[0] - 1):
        assert index["ts"][k] == k * 2000
        assert index["id"][k] == np.flatnonzero(t >= k * 2000)[0] if (t >= k * 2000).any() else t.size
    np.testing.assert_array_equal(read_h5_events(path), random_events)
    np.testing.assert_array_equal(read_h5_events(path, 10_000, 20_001), random_events[(t >= 10_000) & (t < 20_001)])
    reader = open_events(path)
    assert (reader.height, reader.width) == (480, 640)
    reader.seek_time(33_333)
    np.testing.assert_array_equal(reader.load_delta_t(4_444), random_events[(t >= 33_333) & (t < 37_777)])


def test_foreign_h5_without_index_is_reindexed(tmp_path):
    path = tmp_path / "foreign.hdf5"
    ev = make_events([(1, 2, 1, 100), (3, 4, 0, 5000), (5, 6, 1, 9000)])
    with h5py.File(path, "w") as fh:
        fh.create_group("CD").create_dataset("events", data=ev)
    reader = open_events(path)
    assert (reader.width, reader.height) == (6, 7)
    reader.seek_time(4000)
    assert reader.load_delta_t(5001)["t"].tolist() == [5000, 9000]


def test_truncated_h5_raises_format_error(tmp_path, random_events):
    path = tmp_path / "cut.h5"
    write_h5_events(path, random_events, 480, 640)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(FormatError) as info:
        open_events(path)
    assert str(path) in str(info.value)
    assert str(len(data) // 3) in str(info.value)


def test_features_round_trip_float_and_uint8(tmp_path):
    gen = np.random.default_rng(0)
    data = gen.random((5, 6, 8, 12)).astype(np.float32)
    path = tmp_path / "rec.h5"
    write_features(
        path, data, "event_cube", 50_000, 16, 24, preprocess_kwargs={"split_polarity": True, "max_incr_per_pixel": 5}
    )
    with H5FeaturesReader(path) as reader:
        assert reader.preprocess == "event_cube"
        assert reader.delta_t == 50_000
        assert reader.num_frames == 5
        assert reader.shape == (6, 8, 12)
        assert reader.duration == 250_000
        assert (reader.event_input_height, reader.event_input_width) == (16, 24)
        assert reader.attrs["mode"] == "delta_t"
        assert reader.attrs["n_events"] == 0
        assert bool(reader.attrs["split_polarity"]) is True
        assert reader.attrs["max_incr_per_pixel"] == 5
        np.testing.assert_array_equal(reader.read_rows(0, 5), data)
        np.testing.assert_array_equal(reader.read(100_000, 100_000), data[2:4])
        with pytest.raises(ConfigError, match="multiples"):
            reader.read(10, 50_000)
    with h5py.File(path, "r") as fh:
        ds = fh["data"]
        assert ds.chunks == (1, 6, 8, 12)
        assert ds.maxshape == (None, 6, 8, 12)
        assert ds.attrs["events_to_tensor"] == b"event_cube"
        assert ds.attrs["delta_t"].dtype == np.uint32
        assert list(ds.attrs["shape"]) == [6, 8, 12]
    small = tmp_path / "small.h5"
    write_features(small, data, "event_cube", 50_000, 16, 24, store_as_uint8=True)
    with H5FeaturesReader(small) as reader:
        assert reader.store_as_uint8
        assert np.abs(reader.read_rows(0, 5) - data).max() <= 1 / 255
    with pytest.raises(ConfigError, match="signed"):
        write_features(tmp_path / "d.h5", data[:, :1] - 0.5, "diff", 50_000, 8, 12, store_as_uint8=True, signed=True)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        write_features(tmp_path / "e.h5", data * 2, "event_cube", 50_000, 8, 12, store_as_uint8=True)
    assert not (tmp_path / "e.h5").exists()


def test_legacy_features_with_downsampling_factor(tmp_path):
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as fh:
        ds = fh.create_dataset("data", data=np.zeros((2, 2, 4, 5), np.float32))
        ds.attrs["events_to_tensor"] = b"histo"
        ds.attrs["delta_t"] = 10_000
        ds.attrs["downsampling_factor"] = 2
        ds.attrs["mode"] = "n_events"
        fh["last_timestamps"] = np.array([100, 250])
    with H5FeaturesReader(path) as reader:
        assert (reader.event_input_height, reader.event_input_width) == (16, 20)
        assert reader.mode == "n_events"
        assert reader.last_timestamps.tolist() == [100, 250]


def test_flow_labels_round_trip_and_validation(tmp_path):
    flow = np.random.default_rng(1).normal(size=(3, 2, 4, 5)).astype(np.float32)
    flow[1, :, 0, 0] = np.inf
    starts = np.array([0, 10_000, 20_000])
    path = tmp_path / "x_flow.h5"
    write_flow_labels(path, flow, starts, starts + 10_000, 8, 10)
    labels = read_flow_labels(path)
    np.testing.assert_array_equal(labels.flow, flow)
    assert labels.delta_t == 10_000
    assert (labels.event_input_height, labels.event_input_width) == (8, 10)
    assert check_flow_file(path).start_ts.tolist() == [0, 10_000, 20_000]
    with pytest.raises(ConfigError, match="increase"):
        write_flow_labels(tmp_path / "bad_flow.h5", flow, starts[::-1], starts[::-1] + 1, 8, 10)
    # The original's generators never wrote delta_t: our reader does not need it when the ts datasets exist.
    no_attr = tmp_path / "n_flow.h5"
    with h5py.File(no_attr, "w") as fh:
        fh["flow"] = flow
        fh["flow_start_ts"] = starts
        fh["flow_end_ts"] = starts + 7
    assert read_flow_labels(no_attr).end_ts.tolist() == [7, 10_007, 20_007]
    only_attr = tmp_path / "o_flow.h5"
    with h5py.File(only_attr, "w") as fh:
        fh["flow"] = flow
        fh["flow"].attrs["delta_t"] = 5
    assert read_flow_labels(only_attr).start_ts.tolist() == [0, 5, 10]
    broken = tmp_path / "b_flow.h5"
    with h5py.File(broken, "w") as fh:
        fh["flow"] = flow
        fh["flow_start_ts"] = starts[:2]
        fh["flow_end_ts"] = starts[:2] + 1
    with pytest.raises(FormatError, match="do not match"):
        check_flow_file(broken)


def test_label_paths():
    assert label_path_for("/d/rec_td.dat").name == "rec_flow.h5"
    assert label_path_for("/d/rec_cd.dat").name == "rec_flow.h5"
    assert label_path_for("/d/rec.raw").name == "rec_flow.h5"
    assert label_path_for("/d/rec.h5").name == "rec_flow.h5"


def test_flow_for_interval_scaling_and_propagation():
    h, w = 6, 8
    flow = np.zeros((3, 2, h, w), np.float32)
    flow[0, 0] = 2.0  # +2 px in x over [0, 10)
    flow[1, 0] = 4.0  # +4 px over [10, 20)
    flow[2, 1] = 1.0
    flow[2, :, 3, 3] = np.inf
    labels = FlowLabels(flow, np.array([0, 10, 20]), np.array([10, 20, 30]), h, w, 10)
    np.testing.assert_allclose(flow_for_interval(labels, 2, 7)[0], 1.0)  # inside one interval: scaled
    across = flow_for_interval(labels, 5, 15)  # half of each: 1 + 2 px
    np.testing.assert_allclose(across[0, :, :4], 3.0)
    assert np.isinf(across[0, :, -3:]).all()  # pushed out of the image -> invalid
    assert flow_for_interval(labels, 25, 35) is None  # not covered
    assert np.isinf(flow_for_interval(labels, 20, 30)[:, 3, 3]).all()


def test_exchange_formats_round_trip(tmp_path):
    from opsin.eventflow.io import flow_formats as ff

    flow = np.random.default_rng(2).normal(scale=20, size=(2, 5, 7)).astype(np.float32)
    ff.write_flo(tmp_path / "a.flo", flow)
    raw = (tmp_path / "a.flo").read_bytes()
    assert np.frombuffer(raw, "<f4", 1)[0] == np.float32(202021.25)
    assert np.frombuffer(raw, "<i4", 2, offset=4).tolist() == [7, 5]
    assert np.frombuffer(raw, "<f4", 2, offset=12).tolist() == [flow[0, 0, 0], flow[1, 0, 0]]  # interleaved u, v
    np.testing.assert_array_equal(ff.read_flo(tmp_path / "a.flo"), flow)
    (tmp_path / "cut.flo").write_bytes(raw[:-4])
    with pytest.raises(FormatError, match=r"7x5 field"):
        ff.read_flo(tmp_path / "cut.flo")
    flow[:, 1, 1] = np.inf
    ff.write_dsec_png(tmp_path / "a.png", flow)
    back = ff.read_dsec_png(tmp_path / "a.png")
    valid = np.isfinite(flow).all(axis=0)
    assert np.abs(back[:, valid] - flow[:, valid]).max() <= 0.5 / 128 + 1e-6
    assert np.isinf(back[:, 1, 1]).all()
    ff.write_flow_npy(tmp_path / "a.npy", flow)
    np.testing.assert_array_equal(ff.read_flow_npy(tmp_path / "a.npy"), flow)


def test_flow_labels_read_inside_a_time_range(tmp_path):
    flow = np.arange(6 * 2 * 3 * 4, dtype=np.float32).reshape(6, 2, 3, 4)
    # overlapping intervals (labels over 2 frames, one frame apart), as convert-mvsec --frames 2 writes
    starts = np.array([0, 10, 20, 30, 40, 50])
    path = write_flow_labels(tmp_path / "x_flow.h5", flow, starts, starts + 20, 3, 4)
    inside = read_flow_labels(path, time_range=(10, 60))
    assert inside.start_ts.tolist() == [10, 20, 30, 40]
    np.testing.assert_array_equal(inside.flow, flow[1:5])
    assert read_flow_labels(path, time_range=(0, 15)).flow.shape == (0, 2, 3, 4)
    whole = read_flow_labels(path)
    np.testing.assert_array_equal(whole.flow, flow)


def test_flow_labels_reader_reads_frames_on_demand(tmp_path):
    from opsin.eventflow.io import FlowLabelsReader

    flow = np.random.default_rng(3).normal(size=(4, 2, 3, 5)).astype(np.float32)
    path = write_flow_labels(tmp_path / "y_flow.h5", flow, [0, 7, 9, 20], [7, 9, 20, 30], 6, 10)
    with FlowLabelsReader(path) as reader:
        assert len(reader) == 4
        assert reader.shape == (4, 2, 3, 5)
        assert (reader.event_input_height, reader.event_input_width) == (6, 10)
        assert reader.start_ts.tolist() == [0, 7, 9, 20]
        np.testing.assert_array_equal(reader.frame(2), flow[2])
    bad = tmp_path / "bad_flow.h5"
    with h5py.File(bad, "w") as fh:
        fh["flow"] = np.zeros((2, 2, 3, 5), np.float32)
    with pytest.raises(FormatError, match="no flow_start_ts/flow_end_ts"):
        FlowLabelsReader(bad)
    bad.unlink()  # the failed reader closed its file (an open HDF5 handle would keep it busy on some systems)
