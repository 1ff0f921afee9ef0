"""Streaming inference over one event recording: one flow per window ``[k*delta_t, (k+1)*delta_t)`` from t = 0.

The network always runs on its own window length (the ``delta_t`` it was trained on), one window at a time with the
recurrent state carried through the file. When another output window is asked for, the per-bin flows are brought
onto it with the integration rule used for evaluation (positions propagated through every overlapping bin, each for
the fraction of the bin it covers), so that a 100 ms window from a 50 ms model is the composition of two bins.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opsin.core import get_logger, progress
from opsin.eventflow._association import associate_predictions
from opsin.eventflow._predictor import FlowPredictor
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io import open_events
from opsin.eventflow.io._reader import EventReader
from opsin.eventflow.io.flow_labels import FlowWriter
from opsin.eventflow.preprocessing import CDProcessor

__all__ = ["FlowWindow", "InferenceResult", "infer_file", "iter_flow", "window_range"]

_log = get_logger(__name__)


@dataclass(frozen=True)
class FlowWindow:
    """One predicted window.

    Attributes:
        index: k, the window ``[k*delta_t, (k+1)*delta_t)``.
        start_ts: the window start (us).
        end_ts: the window end (us).
        flow: (2, H, W) float32 displacement in px over the window, at the sensor resolution.
        n_events: events read for the window.
    """

    index: int
    start_ts: int
    end_ts: int
    flow: np.ndarray
    n_events: int


@dataclass(frozen=True)
class InferenceResult:
    """What :func:`infer_file` wrote.

    Attributes:
        path: the ``*_flow.h5`` file.
        windows: number of flow frames.
        delta_t: the window length (us).
        height: flow height (the sensor's).
        width: flow width (the sensor's).
        events: events read.
        seconds: wall time of the inference.
    """

    path: Path
    windows: int
    delta_t: int
    height: int
    width: int
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Throughput of the whole run (reading, features, network, writing)."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def window_range(duration_us: int, delta_t: int, time_range: tuple[int, int] | None = None) -> range:
    """The window indices k to predict: every window up to the one holding the last event, optionally clipped.

    Args:
        duration_us: timestamp of the last event.
        delta_t: window length (us), > 0.
        time_range: (s0, s1) in us: only windows overlapping ``[s0, s1)``.

    Raises:
        ConfigError: ``delta_t <= 0`` or an empty or inverted time range.
    """
    if delta_t <= 0:
        message = f"--delta-t must be a positive number of microseconds, got {delta_t}"
        raise ConfigError(message)
    count = int(duration_us) // delta_t + 1
    if time_range is None:
        return range(count)
    s0, s1 = (int(v) for v in time_range)
    if s1 <= s0 or s0 < 0:
        message = f"--time-range must be S0,S1 with 0 <= S0 < S1 (us), got {s0},{s1}"
        raise ConfigError(message)
    return range(min(s0 // delta_t, count), min(-(-s1 // delta_t), count))


def _model_bins(predictor: FlowPredictor, reader: EventReader, first_bin: int) -> Iterator[tuple[int, np.ndarray, int]]:
    """(bin start, flow, events) of consecutive network windows from ``first_bin`` on, state carried."""
    info = predictor.info
    dt = int(info.delta_t)
    processor = CDProcessor(reader.height, reader.width, 1, info.preprocess, 0, info.preprocess_kwargs)
    features = np.zeros(processor.get_array_dim(), dtype=np.float32)
    predictor.reset()
    start = first_bin * dt
    reader.seek_time(start)
    while True:
        events = np.array(reader.load_delta_t(dt), copy=True)
        events["t"] -= start
        features.fill(0.0)
        processor(events, dt, output=features)
        yield start, predictor.predict(features[0]), int(events.shape[0])
        start += dt


def iter_flow(
    predictor: FlowPredictor,
    reader: EventReader,
    delta_t: int | None = None,
    time_range: tuple[int, int] | None = None,
    show_progress: bool = False,
) -> Iterator[FlowWindow]:
    """Predict the flow of every window of a recording, in time order.

    Args:
        predictor: the network.
        reader: the recording (its sensor size sets the flow resolution).
        delta_t: the output window (us); default: the network's own.
        time_range: only windows overlapping ``[s0, s1)`` (the state starts fresh at the first one).
        show_progress: draw a progress bar on a terminal.

    Yields:
        One :class:`FlowWindow` per window.
    """
    model_dt = int(predictor.info.delta_t)
    out_dt = int(delta_t if delta_t is not None else model_dt)
    windows = window_range(reader.duration_us, out_dt, time_range)
    if len(windows) == 0:
        return
    first_bin = windows[0] * out_dt // model_dt
    bins = _model_bins(predictor, reader, first_bin)
    pending: collections.deque[tuple[int, np.ndarray, int]] = collections.deque()
    counted_until = first_bin * model_dt
    items = progress(windows, total=len(windows), desc="infer", unit="win") if show_progress else windows
    for k in items:
        g0, g1 = k * out_dt, (k + 1) * out_dt
        while not pending or pending[-1][0] + model_dt < g1:
            pending.append(next(bins))
        while pending and pending[0][0] + model_dt <= g0:
            pending.popleft()
        if out_dt == model_dt and pending[0][0] == g0:
            flow = pending[0][1]
        else:
            starts = np.asarray([s for s, _, _ in pending], dtype=np.int64)
            stacked = np.stack([f for _, f, _ in pending])
            joined = associate_predictions(stacked, starts, model_dt, g0, g1, "integrate")
            assert joined is not None  # the pending bins cover [g0, g1) by construction
            flow = joined.astype(np.float32)
        n_events = sum(n for s, _, n in pending if s >= counted_until)
        counted_until = max(counted_until, pending[-1][0] + model_dt)
        yield FlowWindow(k, g0, g1, flow, n_events)


def infer_file(
    predictor: FlowPredictor,
    events_path: str | Path,
    out: str | Path,
    delta_t: int | None = None,
    time_range: tuple[int, int] | None = None,
    show_progress: bool = True,
) -> InferenceResult:
    """Write the predicted flow of a recording to a ``*_flow.h5`` file (written atomically).

    The file holds one frame per window ``[k*delta_t, (k+1)*delta_t)``, in px over the window at the sensor
    resolution, with the attributes ``events_to_tensor``, ``checkpoint_path``, ``input_file_name`` and ``delta_t``.

    Args:
        predictor: the network (see :func:`opsin.eventflow.pretrained.load` and ``load_predictor``).
        events_path: a DAT, EVT 2.0/3.0 RAW or HDF5 event file.
        out: the output file.
        delta_t: the output window (us); default: the network's own.
        time_range: only windows overlapping ``[s0, s1)`` (us).
        show_progress: draw a progress bar on a terminal.

    Returns:
        An :class:`InferenceResult`.

    Raises:
        FileNotFoundError: no such event file.
        FormatError: the event file cannot be decoded.
        ConfigError: a bad window, time range, or a recording without events.
    """
    began = time.perf_counter()
    with open_events(events_path) as reader:
        if reader.event_count == 0:
            message = f"{events_path}: the recording holds no events, so there is no flow to predict"
            raise ConfigError(message)
        attrs = {
            "events_to_tensor": np.bytes_(predictor.info.preprocess.encode()),
            "checkpoint_path": predictor.info.source,
            "input_file_name": str(events_path),
        }
        with FlowWriter(out, reader.height, reader.width, reader.height, reader.width, attrs) as writer:
            events = 0
            for window in iter_flow(predictor, reader, delta_t, time_range, show_progress):
                if not np.isfinite(window.flow).all():
                    message = f"{events_path}: the network produced non-finite flow in window {window.index}"
                    raise ConfigError(message)
                writer.write(window.flow, window.start_ts, window.end_ts)
                events += window.n_events
            count = writer.count
        height, width = reader.height, reader.width
    seconds = time.perf_counter() - began
    out_dt = int(delta_t if delta_t is not None else predictor.info.delta_t)
    _log.info("%s: %d windows of %d us, %d events in %.1f s", out, count, out_dt, events, seconds)
    return InferenceResult(Path(out), count, out_dt, height, width, events, seconds)
