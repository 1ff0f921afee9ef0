"""``opsin-eventflow evaluate``: score a trained network against ground-truth flow files.

Each recording is streamed window by window (T = 1, B = 1, recurrent state carried through the file) at the
network's own ``delta_t``; the predictions are brought onto every GT interval (integrated through the overlapping
bins, or rescaled from the bin of largest overlap) and scored on the valid pixels: finite GT, GT != (0, 0), inside the
crop and, unless ``--dense``, where at least one event fell during the GT interval. The zero-flow baseline (AEE =
mean GT magnitude) and, on request, OpenCV Farneback on event-count images are scored on the same pixels.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from opsin.core import CliError, ExitCode, atomic_write_text, dumps_json, get_logger, progress
from opsin.eventflow._association import event_mask, prediction_for_interval
from opsin.eventflow._baselines import event_count_image, iter_farneback_flows
from opsin.eventflow.io import open_events
from opsin.eventflow.io._open import is_event_file
from opsin.eventflow.io.flow_labels import FlowLabelsReader, label_path_for
from opsin.eventflow.metrics import FlowMetricAccumulator

__all__ = ["EvaluateOptions", "evaluate_recording", "format_table", "labelled_recordings", "run_evaluate"]

_log = get_logger(__name__)

_COLUMNS = ("frames", "valid px", "AEE", "%Out AND", "%Out OR", "zero-flow AEE")


@dataclass(frozen=True)
class EvaluateOptions:
    """Options of one evaluation (see ``opsin-eventflow evaluate --help``)."""

    association: str = "integrate"
    crop: tuple[int, ...] | None = None
    time_range: tuple[int, ...] | None = None
    outlier_rule: str = "both"
    rel_ref: str = "gt"
    dense: bool = False
    keep_zero_gt: bool = False
    device: str = "cpu"
    farneback: bool = False


def labelled_recordings(folder: str | Path) -> list[tuple[Path, Path]]:
    """The (events, ``*_flow.h5``) pairs of a folder: every event file with a label file beside it.

    Raises:
        FileNotFoundError: the folder does not exist.
        CliError: no labelled recording in it (exit code 4).
    """
    root = Path(folder)
    if not root.is_dir():
        message = f"--dir {root}: no such folder"
        raise FileNotFoundError(message)
    pairs = []
    for path in sorted(root.iterdir()):
        if path.stem.endswith("_flow") or not path.is_file() or not is_event_file(path):
            continue
        label = label_path_for(path)
        if label.is_file():
            pairs.append((path, label))
    if not pairs:
        message = f"--dir {root}: no event file with a *_flow.h5 label beside it"
        raise CliError(message, ExitCode.NOT_FOUND)
    return pairs


def _scores(acc: FlowMetricAccumulator) -> dict[str, float]:
    values = acc.compute()
    return {
        "frames": values["n_frames"],
        "valid_px": values["n_valid_px"],
        "aee": values["aee"],
        "outlier_pct": values["outlier_pct"],
        "outlier_or_pct": values["outlier_or_pct"],
        "zero_flow_aee": values["zero_flow_aee"],
        "zero_flow_outlier_pct": values["zero_flow_outlier_pct"],
        "aee_pooled": values["aee_pooled"],
    }


def _score_stream(
    flows: Iterator[tuple[int, np.ndarray]],
    delta_t: int,
    labels: FlowLabelsReader,
    reader: Any,
    options: EvaluateOptions,
) -> FlowMetricAccumulator:
    """Scores predictions that arrive window by window against GT frames read one at a time.

    Only the windows overlapping the current GT interval are kept (GT starts increase, so a window ending before one
    is never needed again), and each interval's events are read from the file when it is scored: memory does not
    grow with the recording. The scores equal :func:`opsin.eventflow.metrics.evaluate_flow_sequence`'s on the same
    predictions.
    """
    acc = FlowMetricAccumulator(options.rel_ref)  # type: ignore[arg-type]
    gt_shape = labels.shape[2:]
    sensor = (reader.height, reader.width)
    crop = tuple(options.crop) if options.crop else None
    s0, s1 = options.time_range or (None, None)
    window: collections.deque[tuple[int, np.ndarray]] = collections.deque()
    exhausted = False
    skipped = 0
    for k in range(len(labels)):
        g0, g1 = int(labels.start_ts[k]), int(labels.end_ts[k])
        if s0 is not None and s1 is not None and (g0 < s0 or g1 > s1):
            continue
        while not exhausted and (not window or window[-1][0] + delta_t < g1):
            step = next(flows, None)
            if step is None:
                exhausted = True
            else:
                window.append(step)
        while window and window[0][0] + delta_t <= g0:
            window.popleft()
        pred = None
        if window:
            starts = np.asarray([start for start, _ in window], dtype=np.int64)
            stack = np.stack([flow for _, flow in window])
            pred = prediction_for_interval(stack, starts, delta_t, g0, g1, gt_shape, options.association)  # type: ignore[arg-type]
        if pred is None:
            skipped += 1
            continue
        mask = None
        if not options.dense:
            mask = event_mask(reader.read_range(g0, g1), g0, g1, gt_shape, sensor, assume_sorted=True)
        acc.update(pred, labels.frame(k), events_mask=mask, crop=crop, keep_zero_gt=options.keep_zero_gt)  # type: ignore[arg-type]
    if skipped:
        _log.debug("%d GT frames not covered by the predictions were skipped", skipped)
    return acc


def evaluate_recording(
    predictor: Any, events_path: Path, gt_path: Path, options: EvaluateOptions
) -> tuple[FlowMetricAccumulator, FlowMetricAccumulator | None]:
    """Scores one recording, streaming: predictions, GT frames and events are read as the GT intervals need them.

    Args:
        predictor: a loaded network (``opsin.eventflow._predictor.FlowPredictor``).
        events_path: the event file.
        gt_path: its ``*_flow.h5`` ground truth.
        options: the evaluation options.

    Returns:
        The model's accumulator and, with ``options.farneback``, the Farneback baseline's (on the model's windows).
    """
    from opsin.eventflow._infer import iter_flow, window_range

    time_range = (int(options.time_range[0]), int(options.time_range[1])) if options.time_range else None
    delta_t = int(predictor.info.delta_t)
    with FlowLabelsReader(gt_path) as labels, open_events(events_path) as reader:
        model_flows = ((int(w.start_ts), w.flow) for w in iter_flow(predictor, reader, time_range=time_range))
        model = _score_stream(model_flows, delta_t, labels, reader, options)
        baseline = None
        if options.farneback:
            windows = window_range(reader.duration_us, delta_t, time_range)
            height, width = reader.height, reader.width

            def image(t0: int, t1: int) -> np.ndarray:
                return event_count_image(reader.read_range(t0, t1), t0, t1, height, width, assume_sorted=True)

            if len(windows):
                fb = iter_farneback_flows(image, delta_t, windows[0] * delta_t, len(windows))
                baseline = _score_stream(fb, delta_t, labels, reader, options)
            else:
                baseline = FlowMetricAccumulator(options.rel_ref)  # type: ignore[arg-type]
    return model, baseline


def _fmt(value: float, digits: int = 3) -> str:
    return "nan" if np.isnan(value) else f"{value:.{digits}f}"


def format_table(rows: list[tuple[str, dict[str, float]]], outlier_rule: str = "both") -> str:
    """A plain-text table: one row per recording (and the mean), the columns of the evaluate report.

    ``outlier_rule`` keeps the AND column (``and``), the OR column (``or``) or both.
    """
    keep = [
        c
        for c in _COLUMNS
        if not ((c == "%Out AND" and outlier_rule == "or") or (c == "%Out OR" and outlier_rule == "and"))
    ]
    width = max([len("file"), *(len(name) for name, _ in rows)])
    lines = [f"{'file':<{width}}  " + "  ".join(f"{c:>13}" for c in keep)]
    for name, s in rows:
        cells = {
            "frames": f"{int(s['frames']):>13d}",
            "valid px": f"{int(s['valid_px']):>13d}",
            "AEE": f"{_fmt(s['aee']):>13}",
            "%Out AND": f"{_fmt(s['outlier_pct'], 2):>13}",
            "%Out OR": f"{_fmt(s['outlier_or_pct'], 2):>13}",
            "zero-flow AEE": f"{_fmt(s['zero_flow_aee']):>13}",
        }
        lines.append(f"{name:<{width}}  " + "  ".join(cells[c] for c in keep))
    return "\n".join(lines)


def method_table(model: dict[str, float], farneback: dict[str, float] | None) -> str:
    """The summary of the methods on the same pixels: the network, zero flow, and Farneback when computed."""
    rows = [("model", model["aee"], model["outlier_pct"], model["outlier_or_pct"])]
    rows.append(("zero flow", model["zero_flow_aee"], model["zero_flow_outlier_pct"], float("nan")))
    if farneback is not None:
        rows.append(("Farneback", farneback["aee"], farneback["outlier_pct"], farneback["outlier_or_pct"]))
    lines = [f"{'method':<10}  {'AEE':>8}  {'%Out AND':>9}  {'%Out OR':>8}"]
    lines += [f"{n:<10}  {_fmt(a):>8}  {_fmt(o, 2):>9}  {_fmt(r, 2):>8}" for n, a, o, r in rows]
    return "\n".join(lines)


def run_evaluate(
    ckpt: str,
    events: str | None,
    gt: str | None,
    folder: str | None,
    options: EvaluateOptions,
    json_out: str | None = None,
) -> dict[str, Any]:
    """Evaluates a checkpoint on one recording or a folder, prints the tables, optionally writes JSON.

    Returns:
        The report (also written to ``json_out``).

    Raises:
        CliError: no GT frame had a valid pixel (exit code 2), or no labelled recording was found (4).
        FileNotFoundError: a missing checkpoint, event or GT file.
        FormatError: an unreadable checkpoint, event or GT file.
    """
    from opsin.eventflow._predictor import load_predictor

    if folder is not None:
        pairs = labelled_recordings(folder)
    else:
        pairs = [(Path(str(events)), Path(str(gt)))]
        for path, flag in ((pairs[0][0], "--events"), (pairs[0][1], "--gt")):
            if not path.is_file():
                message = f"{flag} {path}: no such file"
                raise FileNotFoundError(message)
    predictor = load_predictor(ckpt=ckpt, device=options.device)
    total = FlowMetricAccumulator(options.rel_ref)  # type: ignore[arg-type]
    total_fb = FlowMetricAccumulator(options.rel_ref) if options.farneback else None  # type: ignore[arg-type]
    rows: list[tuple[str, dict[str, float]]] = []
    per_file: dict[str, Any] = {}
    for events_path, gt_path in progress(pairs, desc="evaluate", unit="file"):
        model, baseline = evaluate_recording(predictor, events_path, gt_path, options)
        total.merge(model)
        scores = _scores(model)
        per_file[str(events_path)] = {"model": scores}
        if baseline is not None and total_fb is not None:
            total_fb.merge(baseline)
            per_file[str(events_path)]["farneback"] = _scores(baseline)
        rows.append((events_path.name, scores))
    mean = _scores(total)
    rows.append(("mean", mean))
    fb_mean = _scores(total_fb) if total_fb is not None else None
    click.echo(format_table(rows, options.outlier_rule))
    click.echo("")
    click.echo(method_table(mean, fb_mean))
    report: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "options": asdict(options),
        "delta_t": int(predictor.info.delta_t),
        "files": per_file,
        "mean": {"model": mean, **({"farneback": fb_mean} if fb_mean is not None else {})},
    }
    if json_out is not None:
        atomic_write_text(Path(json_out), dumps_json(report))
    if mean["frames"] <= 0:
        message = "no ground-truth frame has a valid pixel (check --time-range, --crop, or try --dense)"
        raise CliError(message, ExitCode.USAGE)
    return report
