"""Inference on event files: ``infer_file``, ``opsin-eventflow infer`` / ``demo`` and the shipped pretrained model."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from _cli_run import one_error_line, run
from _scenes import DT, translating_events

from opsin.eventflow._association import associate_predictions
from opsin.eventflow.inference import infer_file, load_predictor, window_range
from opsin.eventflow.io import open_events, read_flow_labels
from opsin.eventflow.io.dat import write_dat
from opsin.eventflow.io.evt2 import write_evt2
from opsin.eventflow.io.h5_events import write_h5_events

FIXTURES = Path(os.environ.get("OPSIN_FIXTURES", Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures"))
RAW = FIXTURES / "prophesee-raw-samples"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small FlowModel saved the Lightning way (inference does not care that it is untrained)."""
    import lightning.pytorch as pl
    import torch

    from opsin.eventflow.lightning_model import FlowModel

    torch.manual_seed(0)
    model = FlowModel(array_dim=(2, 6, 32, 32), network_kwargs={"base": 4, "rnn_cell": "lstm", "separable": True})
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 60x90 recording (not a multiple of the network stride) in the three writable formats."""
    events = translating_events(60, 90, (120.0, -40.0), 230_000)
    folder = tmp_path_factory.mktemp("rec")
    paths = {"dat": folder / "rec_td.dat", "evt2": folder / "rec.raw", "h5": folder / "rec_td.h5"}
    write_dat(paths["dat"], events, 60, 90)
    write_evt2(paths["evt2"], events, 60, 90)
    write_h5_events(paths["h5"], events, 60, 90)
    return paths


def test_window_range_counts_windows_from_zero() -> None:
    assert list(window_range(0, DT)) == [0]
    assert list(window_range(49_999, DT)) == [0]
    assert list(window_range(50_000, DT)) == [0, 1]
    assert list(window_range(230_000, DT, (60_000, 140_000))) == [1, 2]
    with pytest.raises(ValueError, match="--delta-t"):
        window_range(1000, 0)


@pytest.mark.parametrize("fmt", ["dat", "evt2", "h5"])
def test_infer_writes_one_finite_flow_per_window_at_sensor_size(
    fmt: str, recordings: dict[str, Path], tiny_ckpt: Path, tmp_path: Path
) -> None:
    predictor = load_predictor(ckpt=tiny_ckpt)
    result = infer_file(predictor, recordings[fmt], tmp_path / "out_flow.h5", show_progress=False)
    with open_events(recordings[fmt]) as reader:
        expected = reader.duration_us // DT + 1
        n_events = reader.event_count
    labels = read_flow_labels(result.path)
    assert result.windows == expected == labels.flow.shape[0]
    assert labels.flow.shape[1:] == (2, 60, 90)
    assert np.isfinite(labels.flow).all()
    np.testing.assert_array_equal(labels.start_ts, np.arange(expected) * DT)
    np.testing.assert_array_equal(labels.end_ts, labels.start_ts + DT)
    assert labels.delta_t == DT
    assert labels.attrs["events_to_tensor"] == "event_cube"
    assert labels.attrs["checkpoint_path"] == str(tiny_ckpt)
    assert result.events == n_events


def test_formats_give_the_same_flow(recordings: dict[str, Path], tiny_ckpt: Path, tmp_path: Path) -> None:
    predictor = load_predictor(ckpt=tiny_ckpt)
    flows = [
        read_flow_labels(infer_file(predictor, recordings[f], tmp_path / f"{f}_flow.h5", show_progress=False).path)
        for f in ("dat", "evt2", "h5")
    ]
    np.testing.assert_allclose(flows[0].flow, flows[1].flow, atol=1e-6)
    np.testing.assert_allclose(flows[0].flow, flows[2].flow, atol=1e-6)


def test_a_longer_window_composes_the_network_windows(
    recordings: dict[str, Path], tiny_ckpt: Path, tmp_path: Path
) -> None:
    predictor = load_predictor(ckpt=tiny_ckpt)
    base = read_flow_labels(infer_file(predictor, recordings["dat"], tmp_path / "a.h5", show_progress=False).path)
    long = read_flow_labels(
        infer_file(predictor, recordings["dat"], tmp_path / "b.h5", delta_t=2 * DT, show_progress=False).path
    )
    assert long.flow.shape[0] == 230_000 // (2 * DT) + 1
    np.testing.assert_array_equal(long.start_ts, np.arange(long.flow.shape[0]) * 2 * DT)
    compared = 0
    for k in range(long.flow.shape[0]):
        expected = associate_predictions(base.flow, base.start_ts, DT, 2 * k * DT, (2 * k + 2) * DT)
        if expected is None:  # the last long window reaches past the last short one
            continue
        np.testing.assert_allclose(long.flow[k], expected, atol=1e-4)
        compared += 1
    assert compared == 2


def test_time_range_keeps_windows_aligned_at_zero(recordings: dict[str, Path], tiny_ckpt: Path, tmp_path: Path) -> None:
    predictor = load_predictor(ckpt=tiny_ckpt)
    result = infer_file(
        predictor, recordings["dat"], tmp_path / "r.h5", time_range=(60_000, 140_000), show_progress=False
    )
    labels = read_flow_labels(result.path)
    np.testing.assert_array_equal(labels.start_ts, [50_000, 100_000])


@pytest.mark.skipif(not RAW.is_dir(), reason="real Prophesee recordings not found (set OPSIN_FIXTURES)")
@pytest.mark.parametrize(
    ("name", "time_range", "shape"),
    [
        ("evt2_sample.raw", (1_300_000, 1_400_000), (476, 600)),
        ("evt3_sample.raw", (11_700_000, 11_750_000), (720, 1280)),
    ],
)
def test_infer_on_real_recordings(
    name: str, time_range: tuple[int, int], shape: tuple[int, int], tiny_ckpt: Path, tmp_path: Path
) -> None:
    predictor = load_predictor(ckpt=tiny_ckpt)
    result = infer_file(predictor, RAW / name, tmp_path / "real_flow.h5", time_range=time_range, show_progress=False)
    labels = read_flow_labels(result.path)
    first, last = time_range[0] // DT, -(-time_range[1] // DT)
    np.testing.assert_array_equal(labels.start_ts, np.arange(first, last) * DT)
    assert labels.flow.shape[1:] == (2, *shape)
    assert np.isfinite(labels.flow).all()
    assert result.events > 0


def test_cli_infer_and_bad_inputs(recordings: dict[str, Path], tiny_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli_flow.h5"
    code, stdout, _ = run(["infer", "--input", str(recordings["dat"]), "--out", str(out), "--ckpt", str(tiny_ckpt)])
    assert code == 0
    assert "5 flows" in stdout
    assert read_flow_labels(out).flow.shape[0] == 5

    truncated = tmp_path / "cut_td.dat"
    data = recordings["dat"].read_bytes()
    truncated.write_bytes(data[: len(data) - 3])
    cases = [
        (["--input", str(truncated)], 2, "cut_td.dat"),
        (["--input", str(recordings["dat"]), "--delta-t", "0"], 2, "--delta-t"),
        (["--input", str(recordings["dat"]), "--ckpt", str(tmp_path / "nope.ckpt")], 4, "nope.ckpt"),
        (["--input", str(tmp_path / "missing_td.dat")], 4, "missing_td.dat"),
        (["--input", str(recordings["dat"]), "--time-range", "5,2"], 2, "--time-range"),
    ]
    for extra, expected_code, needle in cases:
        args = ["infer", "--out", str(tmp_path / "bad_flow.h5"), *extra]
        if "--ckpt" not in extra:
            args += ["--ckpt", str(tiny_ckpt)]
        code, _, err = run(args)
        assert code == expected_code, (extra, err)
        assert needle in one_error_line(err)
    assert not (tmp_path / "bad_flow.h5").exists()


def test_a_checkpoint_of_something_else_is_refused(tmp_path: Path, recordings: dict[str, Path]) -> None:
    import torch

    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(3)}}, other)
    code, _, err = run(
        ["infer", "--input", str(recordings["dat"]), "--out", str(tmp_path / "x.h5"), "--ckpt", str(other)]
    )
    assert code == 2
    assert "other.ckpt" in one_error_line(err)


@pytest.mark.parametrize("mode", ["arrows", "dense", "sharp"])
def test_demo_writes_an_mp4_with_one_frame_per_window(
    mode: str, recordings: dict[str, Path], tiny_ckpt: Path, tmp_path: Path
) -> None:
    out = tmp_path / f"{mode}.mp4"
    code, stdout, err = run(
        ["demo", "--input", str(recordings["dat"]), "--out", str(out), "--ckpt", str(tiny_ckpt), "--mode", mode]
    )
    assert code == 0, err
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames += 1
        assert frame.shape == (60, 180 if mode == "sharp" else 90, 3)
    capture.release()
    assert frames == 5
    assert "5 frames at 20 fps" in stdout
