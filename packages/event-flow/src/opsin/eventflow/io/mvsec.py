"""MVSEC sequences: conversion of ``<name>_data.hdf5`` events and ``<name>_gt.hdf5`` flow to DAT and flow labels.

MVSEC (the Multi Vehicle Stereo Event Camera dataset, DAVIS 346 at 346x260) stores per camera, in ``<name>_data.hdf5``:
``davis/<camera>/events``, an (N, 4) float64 array of rows (x, y, t, p) with t in seconds on the ROS clock and p in
{-1, 1}, and ``davis/<camera>/image_raw_ts``, the timestamps (s) of the grayscale (APS) frames. ``<name>_gt.hdf5``
holds ``davis/<camera>/flow_dist``, (M, 2, H, W) displacements in pixels, and ``flow_dist_ts``; frame i is the
displacement from ``flow_dist_ts[i]`` to ``flow_dist_ts[i + 1]`` (the last frame has no end and is not used).

The converter writes ``<name>_td.dat`` (t re-based to microseconds from the first event, p mapped to {0, 1}) and
``<name>_flow.h5``: the ground truth over the APS intervals ``[image_raw_ts[k], image_raw_ts[k + frames])`` (the
published dt = 1 and dt = 4 settings), carried from the GT intervals by scaling inside one of them and by propagating
pixel positions across several. On outdoor sequences the rows of the car's hood (y >= 190) are invalid (+inf).
Both files stream, so whole sequences (tens of GB of float64 flow) convert in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from opsin.core import progress
from opsin.eventflow._events import EVENT_CD
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._h5util import open_h5
from opsin.eventflow.io.dat import DatWriter
from opsin.eventflow.io.flow_labels import FlowLabels, FlowWriter, flow_for_interval

__all__ = ["MVSEC_HOOD_ROW", "MVSEC_SENSOR_SIZE", "MvsecConversion", "convert_mvsec", "mvsec_name"]

#: DAVIS 346 sensor (height, width), used when the file has no frames or flow to read it from.
MVSEC_SENSOR_SIZE = (260, 346)
#: First image row of the car's hood in the outdoor sequences; the published protocol excludes rows from here on.
MVSEC_HOOD_ROW = 190
#: Event rows read per step (64 MB of float64).
CHUNK_EVENTS = 1 << 21


@dataclass(frozen=True)
class MvsecConversion:
    """What :func:`convert_mvsec` wrote.

    Attributes:
        events_path: the DAT file.
        labels_path: the flow label file, or None without ground truth.
        events: events written.
        labels: label frames written.
        height: sensor height.
        width: sensor width.
        t0_s: the MVSEC time (s) of t = 0 in both outputs (the first event's).
        hood_row: rows from this one on are invalid in the labels (None: no hood mask).
    """

    events_path: Path
    labels_path: Path | None
    events: int
    labels: int
    height: int
    width: int
    t0_s: float
    hood_row: int | None


def mvsec_name(data_path: str | Path) -> str:
    """The sequence name of an MVSEC file: ``outdoor_day1_data.hdf5`` -> ``outdoor_day1``."""
    stem = Path(data_path).name
    for suffix in (".hdf5", ".h5"):
        stem = stem.removesuffix(suffix)
    for tail in ("_data", "_gt"):
        stem = stem.removesuffix(tail)
    return stem


def _dataset(fh: Any, path: Path, key: str) -> Any:
    if key not in fh:
        message = f"no dataset '{key}' (not an MVSEC file of this camera? give --camera left or right)"
        raise FormatError(path, None, message)
    return fh[key]


def _sensor_size(data: Any, gt_flow: Any | None, camera: str) -> tuple[int, int]:
    images = data.get(f"davis/{camera}/image_raw")
    if images is not None and len(images.shape) == 3:
        return int(images.shape[1]), int(images.shape[2])
    if gt_flow is not None:
        return int(gt_flow.shape[2]), int(gt_flow.shape[3])
    return MVSEC_SENSOR_SIZE


def _to_events(rows: np.ndarray, t0: float, first_row: int, path: Path, height: int, width: int) -> np.ndarray:
    """(k, 4) MVSEC rows -> EVENT_CD records, checking coordinates and polarities."""
    x, y, t, p = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    bad = ~((x >= 0) & (x < width) & (y >= 0) & (y < height) & (x == np.floor(x)) & (y == np.floor(y)))
    bad |= ~np.isin(p, (-1.0, 0.0, 1.0)) | ~np.isfinite(t)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        message = (
            f"event row {first_row + i} is ({x[i]}, {y[i]}, {t[i]}, {p[i]}); expected integer x < {width}, "
            f"y < {height} and p in {{-1, 1}}"
        )
        raise FormatError(path, None, message)
    out = np.empty(rows.shape[0], dtype=EVENT_CD)
    out["x"] = x
    out["y"] = y
    out["p"] = p > 0
    out["t"] = np.rint((t - t0) * 1e6)
    return out


def _events_dataset(data: Any, path: Path, camera: str) -> Any:
    events = _dataset(data, path, f"davis/{camera}/events")
    if len(events.shape) != 2 or events.shape[1] != 4 or events.shape[0] == 0:
        message = f"davis/{camera}/events has shape {events.shape}; expected (N, 4) rows of x, y, t, p with N > 0"
        raise FormatError(path, None, message)
    return events


def _bar(total: int, desc: str, unit: str, quiet: bool) -> Any:
    scale = unit == "ev"  # millions of events read as 2.1M/10.0M
    if quiet:
        return progress(total=total, desc=desc, unit=unit, disable=True)
    return progress(total=total, desc=desc, unit=unit, unit_scale=scale)  # shown on a terminal or in a notebook


def _convert_events(events: Any, path: Path, out: Path, size: tuple[int, int], quiet: bool) -> tuple[int, float]:
    n = int(events.shape[0])
    t0 = float(events[0, 2])
    last = 0
    with DatWriter(out, size[0], size[1]) as writer, _bar(n, "events", "ev", quiet) as bar:
        for start in range(0, n, CHUNK_EVENTS):
            rows = np.asarray(events[start : start + CHUNK_EVENTS], dtype=np.float64)
            chunk = _to_events(rows, t0, start, path, size[0], size[1])
            steps = np.diff(chunk["t"], prepend=last)
            if (steps < 0).any():
                i = int(np.flatnonzero(steps < 0)[0])
                message = f"events are not sorted by time: row {start + i} is earlier than the row before it"
                raise FormatError(path, None, message)
            writer.write(chunk)
            last = int(chunk["t"][-1])
            bar.update(rows.shape[0])
    return n, t0


class _GtFrames:
    """Reads MVSEC GT frames on demand, keeping the few that consecutive intervals share."""

    def __init__(self, flow: Any, starts_us: np.ndarray, size: tuple[int, int]) -> None:
        self.flow = flow
        self.starts = starts_us[:-1]  # frame i covers [ts[i], ts[i + 1]); the last frame has no end
        self.ends = starts_us[1:]
        self.size = size
        self._cache: dict[int, np.ndarray] = {}

    def over(self, t0: int, t1: int) -> np.ndarray | None:
        """The GT displacement over ``[t0, t1)``, or None when GT does not cover the whole interval."""
        first = int(np.searchsorted(self.ends, t0, side="right"))
        stop = int(np.searchsorted(self.starts, t1, side="left"))
        if first >= stop:
            return None
        for key in [k for k in self._cache if k < first]:
            del self._cache[key]
        frames = []
        for i in range(first, stop):
            if i not in self._cache:
                self._cache[i] = np.asarray(self.flow[i], dtype=np.float32)
            frames.append(self._cache[i])
        labels = FlowLabels(
            flow=np.stack(frames),
            start_ts=self.starts[first:stop],
            end_ts=self.ends[first:stop],
            event_input_height=self.size[0],
            event_input_width=self.size[1],
        )
        return flow_for_interval(labels, t0, t1)


@dataclass(frozen=True)
class _GroundTruth:
    flow: Any  # the (M, 2, H, W) h5py dataset, read frame by frame
    ts: np.ndarray  # (M,) seconds
    aps_ts: np.ndarray  # (K,) seconds


def _ground_truth(data: Any, gt: Any, paths: tuple[Path, Path], camera: str, size: tuple[int, int]) -> _GroundTruth:
    """The GT datasets and APS timestamps, with their shapes checked (nothing large is read)."""
    data_path, gt_path = paths
    flow = _dataset(gt, gt_path, f"davis/{camera}/flow_dist")
    ts = np.asarray(_dataset(gt, gt_path, f"davis/{camera}/flow_dist_ts"), dtype=np.float64)
    if len(flow.shape) != 4 or flow.shape[1] != 2 or flow.shape[0] != ts.shape[0]:
        message = f"davis/{camera}/flow_dist has shape {flow.shape} for {ts.shape[0]} timestamps; expected (M, 2, H, W)"
        raise FormatError(gt_path, None, message)
    if tuple(flow.shape[2:]) != size:
        message = f"flow frames are {flow.shape[3]}x{flow.shape[2]} but the events' sensor is {size[1]}x{size[0]}"
        raise FormatError(gt_path, None, message)
    if ts.size > 1 and (np.diff(ts) <= 0).any():
        raise FormatError(gt_path, None, f"davis/{camera}/flow_dist_ts must increase")
    aps_ts = np.asarray(_dataset(data, data_path, f"davis/{camera}/image_raw_ts"), dtype=np.float64)
    return _GroundTruth(flow, ts, aps_ts)


def _check_same_sequence(truth: _GroundTruth, first: float, last: float, gt_path: Path) -> None:
    """Refuses ground truth whose times miss the events' span (files of two different sequences)."""
    if truth.ts.size and (truth.ts[-1] <= first or truth.ts[0] >= last):
        message = (
            f"ground-truth times {truth.ts[0]:.3f}-{truth.ts[-1]:.3f} s do not overlap the events' {first:.3f}-"
            f"{last:.3f} s: the two files are not of the same sequence"
        )
        raise FormatError(gt_path, None, message)


def _convert_labels(
    source: _GroundTruth, out: Path, size: tuple[int, int], t0: float, frames: int, hood_row: int | None, quiet: bool
) -> int:
    frames_us = _GtFrames(source.flow, np.rint((source.ts - t0) * 1e6).astype(np.int64), size)
    aps_us = np.rint((source.aps_ts - t0) * 1e6).astype(np.int64)
    starts, ends = aps_us[:-frames], aps_us[frames:]
    keep = (starts >= 0) & (ends > starts)
    attrs = {"mvsec_t0_s": t0, "mvsec_frames": frames, "mvsec_hood_row": -1 if hood_row is None else hood_row}
    with FlowWriter(out, size[0], size[1], size[0], size[1], attrs=attrs) as writer:
        last_start = -1
        with _bar(int(keep.sum()), "labels", "frame", quiet) as bar:
            for start, end in zip(starts[keep].tolist(), ends[keep].tolist(), strict=True):
                bar.update(1)
                if start <= last_start:  # two APS frames in one microsecond: keep the first
                    continue
                g = frames_us.over(start, end)
                if g is None:  # not covered by ground truth
                    continue
                if hood_row is not None:
                    g[:, hood_row:, :] = np.inf
                writer.write(g, start, end)
                last_start = start
        return writer.count


def convert_mvsec(
    data_path: str | Path,
    out_dir: str | Path,
    gt_path: str | Path | None = None,
    *,
    camera: Literal["left", "right"] = "left",
    frames: int = 1,
    hood_row: int | Literal["auto"] | None = "auto",
    quiet: bool = False,
) -> MvsecConversion:
    """Converts one MVSEC sequence to ``<name>_td.dat`` and, with ground truth, ``<name>_flow.h5`` in ``out_dir``.

    The two files are what ``opsin-eventflow evaluate --dir`` and the data modules read. Every header is checked
    before anything is written, and each file is written atomically (no partial file is left behind).

    Args:
        data_path: ``<name>_data.hdf5``.
        out_dir: the output folder (created if missing).
        gt_path: ``<name>_gt.hdf5``; default: the sibling of ``data_path`` when it exists, else events only.
        camera: ``left`` or ``right`` (MVSEC's flow ground truth is for the left camera).
        frames: label intervals span this many APS frames (1 and 4 are the published settings).
        hood_row: rows from this one on are invalid in the labels; ``"auto"``: 190 for outdoor sequences (the car's
            hood) of a sensor taller than that, none otherwise; ``None``: no mask.
        quiet: no progress bars.

    Returns:
        What was written.

    Raises:
        FileNotFoundError: a named input is missing.
        FormatError: an input is not an MVSEC file (missing datasets, bad shapes, unsorted or invalid events).
        ConfigError: a bad ``frames``, ``camera`` or ``hood_row``.
    """
    data_path = Path(data_path)
    if camera not in ("left", "right"):
        raise ConfigError(f"camera must be 'left' or 'right', got {camera!r}")
    if frames < 1:
        raise ConfigError(f"frames must be at least 1, got {frames}")
    name = mvsec_name(data_path)
    if gt_path is None:
        sibling = data_path.with_name(f"{name}_gt{data_path.suffix}")
        gt_path = sibling if sibling.exists() else None
    for given in (data_path, gt_path):
        if given is not None and not Path(given).is_file():
            raise FileNotFoundError(f"{given}: no such file")
    out = Path(out_dir)
    events_path, labels_path = out / f"{name}_td.dat", out / f"{name}_flow.h5"
    with open_h5(data_path) as data:
        gt = open_h5(gt_path) if gt_path is not None else None
        try:
            events = _events_dataset(data, data_path, camera)
            size = _sensor_size(data, None if gt is None else gt.get(f"davis/{camera}/flow_dist"), camera)
            if hood_row == "auto":  # the hood is in the outdoor car sequences, on the DAVIS 346's 260 rows
                hood_row = MVSEC_HOOD_ROW if "outdoor" in name and size[0] > MVSEC_HOOD_ROW else None
            if hood_row is not None and not 0 <= hood_row < size[0]:
                raise ConfigError(f"hood_row must be in [0, {size[0]}), got {hood_row}")
            truth = None if gt is None else _ground_truth(data, gt, (data_path, Path(gt_path)), camera, size)  # type: ignore[arg-type]
            if truth is not None:
                _check_same_sequence(truth, float(events[0, 2]), float(events[-1, 2]), Path(gt_path))  # type: ignore[arg-type]
            out.mkdir(parents=True, exist_ok=True)  # only once the inputs passed their checks
            count, t0 = _convert_events(events, data_path, events_path, size, quiet)
            labels = 0 if truth is None else _convert_labels(truth, labels_path, size, t0, frames, hood_row, quiet)
        finally:
            if gt is not None:
                gt.close()
    return MvsecConversion(
        events_path=events_path,
        labels_path=labels_path if gt is not None else None,
        events=count,
        labels=labels,
        height=size[0],
        width=size[1],
        t0_s=t0,
        hood_row=hood_row,
    )
