"""Dense flow labels and predictions (``*_flow.h5``).

``flow`` float32 (N, 2, H, W): the displacement in pixels (u first) over ``[flow_start_ts[i], flow_end_ts[i])`` at
resolution (H, W); invalid pixels are +inf (NaN accepted). Attributes ``event_input_height``,
``event_input_width`` and ``delta_t`` (the common interval length, 0 if they vary).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opsin.core import temp_sibling
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._h5util import AtomicStreamWriter, atomic_h5, open_h5

__all__ = [
    "FlowLabels",
    "FlowLabelsReader",
    "FlowWriter",
    "check_flow_file",
    "flow_for_interval",
    "label_path_for",
    "read_flow_labels",
    "write_flow_labels",
]


@dataclass
class FlowLabels:
    """The content of a ``*_flow.h5`` file.

    Attributes:
        flow: (N, 2, H, W) float32 displacements in px over each interval.
        start_ts: (N,) int64 interval starts (us).
        end_ts: (N,) int64 interval ends (us).
        event_input_height: sensor height the flow refers to.
        event_input_width: sensor width the flow refers to.
        delta_t: the common interval length, 0 if they vary.
        attrs: every attribute of ``flow``.
    """

    flow: np.ndarray
    start_ts: np.ndarray
    end_ts: np.ndarray
    event_input_height: int
    event_input_width: int
    delta_t: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)


def label_path_for(path: str | Path) -> Path:
    """Returns the label file of a recording.

    ``X_td.dat``, ``X_cd.dat``, ``X.raw`` and features ``X.h5`` all map to ``X_flow.h5``.
    """
    path = Path(path)
    stem = re.sub(r"_(td|cd)$", "", path.stem)
    return path.with_name(f"{stem}_flow.h5")


def write_flow_labels(
    path: str | Path,
    flow: np.ndarray,
    start_ts: np.ndarray,
    end_ts: np.ndarray,
    event_input_height: int,
    event_input_width: int,
    delta_t: int | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a ``*_flow.h5`` file atomically.

    Args:
        path: the output file.
        flow: (N, 2, H, W) displacements in px (u first), +inf where invalid.
        start_ts: (N,) increasing interval starts (us).
        end_ts: (N,) interval ends, each > its start.
        event_input_height: sensor height.
        event_input_width: sensor width.
        delta_t: the ``delta_t`` attribute; by default the common interval length (0 if they vary).
        attrs: extra attributes of ``flow`` (e.g. ``events_to_tensor`` for predictions).

    Returns:
        The path written.

    Raises:
        ConfigError: inconsistent shapes, starts not increasing or ends not after starts.
    """
    arr = np.asarray(flow, dtype=np.float32)
    starts = np.asarray(start_ts, dtype=np.int64)
    ends = np.asarray(end_ts, dtype=np.int64)
    _validate(path, arr.shape, starts, ends, ConfigError)
    if delta_t is None:
        lengths = np.unique(ends - starts)
        delta_t = int(lengths[0]) if lengths.size == 1 else 0
    with atomic_h5(path) as fh:
        ds = fh.create_dataset(
            "flow",
            data=arr,
            chunks=(1, *arr.shape[1:]) if arr.shape[0] else None,
            maxshape=(None, *arr.shape[1:]),
            compression="gzip",
        )
        fh.create_dataset("flow_start_ts", data=starts)
        fh.create_dataset("flow_end_ts", data=ends)
        ds.attrs["event_input_height"] = int(event_input_height)
        ds.attrs["event_input_width"] = int(event_input_width)
        ds.attrs["delta_t"] = np.uint32(delta_t)
        for key, value in (attrs or {}).items():
            ds.attrs[key] = value
    return Path(path)


class FlowWriter(AtomicStreamWriter):
    """Appends flow frames to a new ``*_flow.h5`` file, renamed into place when closed.

    For predictions over long recordings, where the whole (N, 2, H, W) array would not fit in memory. Frames must
    come with increasing starts and ends after their starts; the ``delta_t`` attribute is set on close to the common
    interval length (0 if they vary). Leaving a ``with`` block through an exception leaves ``path`` untouched.

    Args:
        path: the output file.
        height: flow height H.
        width: flow width W.
        event_input_height: sensor height the flow refers to.
        event_input_width: sensor width the flow refers to.
        attrs: extra attributes of ``flow`` (e.g. ``events_to_tensor``, ``checkpoint_path``).
    """

    def __init__(
        self,
        path: str | Path,
        height: int,
        width: int,
        event_input_height: int,
        event_input_width: int,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        import h5py

        self.path = Path(path)
        self._tmp = temp_sibling(self.path)
        self._fh = h5py.File(self._tmp, "w")
        shape = (2, int(height), int(width))
        self._flow = self._fh.create_dataset(
            "flow", shape=(0, *shape), maxshape=(None, *shape), chunks=(1, *shape), dtype=np.float32, compression="gzip"
        )
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._flow.attrs["event_input_height"] = int(event_input_height)
        self._flow.attrs["event_input_width"] = int(event_input_width)
        for key, value in (attrs or {}).items():
            self._flow.attrs[key] = value

    @property
    def count(self) -> int:
        """Frames written so far."""
        return len(self._starts)

    def write(self, flow: np.ndarray, start_ts: int, end_ts: int) -> None:
        """Appends one (2, H, W) frame covering ``[start_ts, end_ts)``.

        Raises:
            ConfigError: wrong shape, or timestamps out of order.
        """
        arr = np.asarray(flow, dtype=np.float32)
        if arr.shape != self._flow.shape[1:]:
            message = f"{self.path}: a frame of shape {arr.shape} does not match the file's {self._flow.shape[1:]}"
            raise ConfigError(message)
        if end_ts <= start_ts or (self._starts and start_ts <= self._starts[-1]):
            message = f"{self.path}: frame [{start_ts}, {end_ts}) is out of order after start {self._starts[-1:]}"
            raise ConfigError(message)
        n = self._flow.shape[0]
        self._flow.resize(n + 1, axis=0)
        self._flow[n] = arr
        self._starts.append(int(start_ts))
        self._ends.append(int(end_ts))

    def _flush(self) -> None:
        starts = np.asarray(self._starts, dtype=np.int64)
        ends = np.asarray(self._ends, dtype=np.int64)
        self._fh.create_dataset("flow_start_ts", data=starts)
        self._fh.create_dataset("flow_end_ts", data=ends)
        lengths = np.unique(ends - starts)
        self._flow.attrs["delta_t"] = np.uint32(lengths[0] if lengths.size == 1 else 0)


def _validate(
    path: object,
    shape: tuple[int, ...],
    starts: np.ndarray,
    ends: np.ndarray,
    error: type[ConfigError] | type[FormatError],
) -> None:
    problem = ""
    if len(shape) != 4 or shape[1] != 2:
        problem = f"flow must have shape (N, 2, H, W), got {shape}"
    elif starts.shape != (shape[0],) or ends.shape != (shape[0],):
        problem = f"flow_start_ts {starts.shape} / flow_end_ts {ends.shape} do not match N={shape[0]}"
    elif starts.size > 1 and (np.diff(starts) <= 0).any():
        problem = "flow_start_ts must increase"
    elif (ends <= starts).any():
        problem = "every flow_end_ts must be after its flow_start_ts"
    if problem:
        if error is FormatError:
            raise FormatError(path, None, problem)
        message = f"{path}: {problem}"
        raise ConfigError(message)


class FlowLabelsReader:
    """A ``*_flow.h5`` file opened for reading frame by frame (interval times and attributes are read at once).

    For recordings whose labels would not fit in memory; :func:`read_flow_labels` reads a whole file (or a time
    range) through it. Use it as a context manager, or call :meth:`close`.

    Attributes:
        path: the file.
        start_ts: (N,) int64 interval starts (us).
        end_ts: (N,) int64 interval ends (us).
        shape: (N, 2, H, W).
        event_input_height: sensor height the flow refers to.
        event_input_width: sensor width the flow refers to.
        delta_t: the common interval length, 0 if they vary.
        attrs: every attribute of ``flow``.

    Raises:
        FormatError: missing datasets/attributes or inconsistent shapes (checked before any frame is read).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = open_h5(self.path)
        try:
            if "flow" not in self._fh:
                raise FormatError(self.path, None, "no 'flow' dataset: not a flow label file")
            self._flow = self._fh["flow"]
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self._flow.attrs.items()}
            self.shape: tuple[int, ...] = tuple(self._flow.shape)
            n = self.shape[0] if self.shape else 0
            self.delta_t = int(self.attrs.get("delta_t", 0))
            if "flow_start_ts" in self._fh and "flow_end_ts" in self._fh:
                self.start_ts = np.asarray(self._fh["flow_start_ts"][...], dtype=np.int64)
                self.end_ts = np.asarray(self._fh["flow_end_ts"][...], dtype=np.int64)
            elif self.delta_t > 0:
                self.start_ts = np.arange(n, dtype=np.int64) * self.delta_t
                self.end_ts = self.start_ts + self.delta_t
            else:
                raise FormatError(self.path, None, "no flow_start_ts/flow_end_ts datasets and no delta_t attribute")
            _validate(self.path, self.shape, self.start_ts, self.end_ts, FormatError)
        except BaseException:
            self._fh.close()
            raise
        self.event_input_height = int(self.attrs.get("event_input_height", self.shape[2]))
        self.event_input_width = int(self.attrs.get("event_input_width", self.shape[3]))

    def __len__(self) -> int:
        return self.shape[0]

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as (2, H, W) float32."""
        return np.asarray(self._flow[int(index)], dtype=np.float32)

    def labels(self, time_range: tuple[int, int] | None = None) -> FlowLabels:
        """The whole file, or the frames with ``s0 <= start`` and ``end <= s1`` of ``time_range = (s0, s1)``."""
        starts, ends = self.start_ts, self.end_ts
        if time_range is None:
            flow = np.asarray(self._flow[...], dtype=np.float32)
        else:
            keep = np.flatnonzero((starts >= time_range[0]) & (ends <= time_range[1]))
            starts, ends = starts[keep], ends[keep]
            if keep.size and keep[-1] - keep[0] + 1 == keep.size:  # one contiguous slice: one read
                flow = np.asarray(self._flow[int(keep[0]) : int(keep[-1]) + 1], dtype=np.float32)
            else:
                flow = np.asarray(self._flow[keep.tolist()], dtype=np.float32).reshape(keep.size, *self.shape[1:])
        return FlowLabels(
            flow, starts, ends, self.event_input_height, self.event_input_width, self.delta_t, dict(self.attrs)
        )

    def close(self) -> None:
        """Closes the file."""
        self._fh.close()

    def __enter__(self) -> FlowLabelsReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_flow_labels(path: str | Path, time_range: tuple[int, int] | None = None) -> FlowLabels:
    """Reads a ``*_flow.h5`` file (``flow_start_ts``/``flow_end_ts`` or, when missing, i * delta_t).

    Args:
        path: the flow file.
        time_range: ``(s0, s1)`` in us: read only the frames with ``s0 <= start`` and ``end <= s1`` (the others
            never leave the file, so a window of a long recording costs only its own frames).

    Raises:
        FormatError: missing datasets/attributes or inconsistent shapes.
    """
    with FlowLabelsReader(path) as reader:
        return reader.labels(time_range)


def check_flow_file(path: str | Path) -> FlowLabels:
    """Validates keys, lengths, shapes and timestamp order of a flow file; returns its content.

    Raises:
        FormatError: the file is not a valid flow file.
    """
    return read_flow_labels(path)


def flow_for_interval(labels: FlowLabels, t0: int, t1: int) -> np.ndarray | None:
    """The ground-truth displacement over ``[t0, t1)`` (px at label resolution), or None where GT does not cover it.

    Inside one GT interval the flow is scaled by (t1 - t0) / (end - start); across several intervals pixel
    positions are propagated through consecutive flows (nearest lookup) with partial fractions at both ends.
    Positions leaving the image or hitting invalid GT become +inf.
    """
    if t1 <= t0:
        message = f"empty interval [{t0}, {t1})"
        raise ConfigError(message)
    overlap = np.minimum(labels.end_ts, t1) - np.maximum(labels.start_ts, t0)
    idx = np.flatnonzero(overlap > 0)
    if idx.size == 0:
        return None
    covered = int(overlap[idx].sum())
    if covered < t1 - t0:
        return None
    if idx.size == 1:
        i = int(idx[0])
        scale = (t1 - t0) / float(labels.end_ts[i] - labels.start_ts[i])
        g = labels.flow[i].astype(np.float64) * scale
        g[:, ~np.isfinite(g).all(axis=0)] = np.inf
        return g.astype(np.float32)
    h, w = labels.flow.shape[2:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    px, py = xs.copy(), ys.copy()
    valid = np.ones((h, w), dtype=bool)
    for i in idx.tolist():
        alpha = overlap[i] / float(labels.end_ts[i] - labels.start_ts[i])
        xi = np.clip(np.rint(px), 0, w - 1).astype(np.int64)
        yi = np.clip(np.rint(py), 0, h - 1).astype(np.int64)
        gu = labels.flow[i, 0][yi, xi].astype(np.float64)
        gv = labels.flow[i, 1][yi, xi].astype(np.float64)
        valid &= np.isfinite(gu) & np.isfinite(gv)
        px = px + alpha * np.where(valid, gu, 0.0)
        py = py + alpha * np.where(valid, gv, 0.0)
        valid &= (px > -0.5) & (px < w - 0.5) & (py > -0.5) & (py < h - 0.5)
    out = np.stack([px - xs, py - ys]).astype(np.float32)
    out[:, ~valid] = np.inf
    return out
