"""Optical-flow evaluation: AEE, outlier rates, nPE, angular error, FWL, masks, association and baselines.

Per GT frame k the error is e(x) = ||f(x) - g(x)||_2 in pixels over the GT interval at the GT resolution, on the valid
set V_k (finite GT, GT != (0, 0), inside the crop, at least one event in the interval unless dense):

* ``aee``: mean of e over V_k, averaged over the frames with |V_k| > 0 (``aee_pooled``: sum e / sum |V_k|).
* ``outlier_pct`` (AND rule, MVSEC/KITTI): 100 * #{e > 3 px and e > 0.05 ||r||} / |V_k| with r = g
  (``rel_ref='gt'``) or r = f (``rel_ref='pred'``).
* ``outlier_or_pct`` (OR rule): 100 * #{e >= 3 px or e / ||g|| >= 0.05} / |V_k|.
* ``npe1``/``npe2``/``npe3``: % of pixels with e > n px; ``angular_error``: mean angle in degrees between the
  space-time vectors (u, v, 1) and (u_g, v_g, 1); ``aee_rel``: mean e / ||g|| over pixels with g != 0.
* ``zero_flow_aee`` / ``zero_flow_outlier_pct``: the same for the prediction f = 0 (AEE = mean ||g||).
* Without GT, :func:`flow_warp_loss` (FWL): var(image of the events warped by f) / var(image of the raw events),
  > 1 is better than no flow.

Typical use (the ``evaluate`` command; ``labels`` from :func:`opsin.eventflow.io.flow_labels.read_flow_labels`)::

    acc = evaluate_flow_sequence(pred_flows, pred_starts, delta_t, labels, events=events)
    print(acc.compute()["aee"])

and in a Lightning module, per labelled bin (prediction and label cover the same interval)::

    self.val_metrics.update(flow_pred, label, events_mask=event_mask_from_features(x))  # any resolutions
    ...  # at epoch end:
    self.val_metrics.sync(); values = self.val_metrics.compute(); self.val_metrics.reset()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from opsin.core import get_logger
from opsin.eventflow._association import (
    ASSOCIATION_MODES,
    Crop,
    as_numpy,
    associate_predictions,
    bilinear_lookup,
    event_mask,
    event_mask_from_features,
    prediction_for_interval,
    resize_mask,
    upsample_flow,
    valid_mask,
)
from opsin.eventflow._baselines import FarnebackParams, farneback_flows
from opsin.eventflow._warp_loss import flow_warp_loss, sequence_flow_warp_loss
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io.flow_labels import FlowLabels

__all__ = [
    "ASSOCIATION_MODES",
    "FarnebackParams",
    "FlowMetricAccumulator",
    "FrameMetrics",
    "OUTLIER_PX",
    "OUTLIER_REL",
    "associate_predictions",
    "bilinear_lookup",
    "evaluate_flow_sequence",
    "event_mask",
    "event_mask_from_features",
    "farneback_flows",
    "flow_warp_loss",
    "frame_metrics",
    "prediction_for_interval",
    "resize_mask",
    "sequence_flow_warp_loss",
    "upsample_flow",
    "valid_mask",
]

_log = get_logger(__name__)

#: Absolute outlier threshold (px) of both outlier rules.
OUTLIER_PX = 3.0
#: Relative outlier threshold (fraction of the reference magnitude) of both outlier rules.
OUTLIER_REL = 0.05

RelRef = Literal["gt", "pred"]


@dataclass(frozen=True)
class FrameMetrics:
    """The metrics of one GT frame (NaN where undefined, e.g. no valid pixel).

    Attributes:
        n_valid: |V_k|.
        n_nonzero_gt: valid pixels with ||g|| > 0 (the support of ``aee_rel``).
        aee: mean endpoint error (px).
        outlier_pct: AND-rule outlier percentage.
        outlier_or_pct: OR-rule outlier percentage.
        npe1: % of pixels with e > 1 px.
        npe2: % of pixels with e > 2 px.
        npe3: % of pixels with e > 3 px.
        angular_error: mean space-time angular error (degrees).
        aee_rel: mean e / ||g|| over pixels with g != 0.
        zero_flow_aee: mean ||g|| (the AEE of a zero prediction).
        zero_flow_outlier_pct: AND-rule outlier percentage of a zero prediction.
        sum_error: sum of e (for pixel pooling).
        sum_gt_norm: sum of ||g||.
    """

    n_valid: int
    n_nonzero_gt: int
    aee: float
    outlier_pct: float
    outlier_or_pct: float
    npe1: float
    npe2: float
    npe3: float
    angular_error: float
    aee_rel: float
    zero_flow_aee: float
    zero_flow_outlier_pct: float
    sum_error: float
    sum_gt_norm: float


def _check_rel_ref(rel_ref: str) -> None:
    if rel_ref not in ("gt", "pred"):
        message = f"rel_ref must be 'gt' or 'pred', got {rel_ref!r}"
        raise ConfigError(message)


def frame_metrics(pred: Any, gt: Any, valid: Any = None, rel_ref: RelRef = "gt") -> FrameMetrics:
    """Scores one predicted displacement against one GT frame.

    Args:
        pred: (2, h, w) predicted displacement in px over the GT interval at resolution (h, w); it is upsampled
            with :func:`upsample_flow` when (h, w) differs from the GT resolution.
        gt: (2, H, W) GT displacement (+inf / NaN where invalid).
        valid: (H, W) bool mask; by default :func:`valid_mask` of ``gt`` (finite, non-zero, dense).
        rel_ref: reference magnitude of the AND rule's relative test: ``'gt'`` or ``'pred'``.

    Returns:
        The frame's :class:`FrameMetrics`.
    """
    _check_rel_ref(rel_ref)
    g = as_numpy(gt)
    mask = valid_mask(g) if valid is None else as_numpy(valid, bool)
    if mask.shape != g.shape[1:]:
        message = f"valid mask {mask.shape} does not match the GT resolution {g.shape[1:]}"
        raise ConfigError(message)
    f = upsample_flow(pred, g.shape[1:])
    gv = g[:, mask]
    fv = f[:, mask]
    n = int(mask.sum())
    nan = float("nan")
    if n == 0:
        return FrameMetrics(0, 0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0.0, 0.0)
    err = np.hypot(fv[0] - gv[0], fv[1] - gv[1])
    gnorm = np.hypot(gv[0], gv[1])
    ref = gnorm if rel_ref == "gt" else np.hypot(fv[0], fv[1])
    out_and = (err > OUTLIER_PX) & (err > OUTLIER_REL * ref)
    # e / ||g|| >= 0.05 written without the division: a zero GT makes any non-zero error an outlier.
    out_or = (err >= OUTLIER_PX) | ((err >= OUTLIER_REL * gnorm) & ((gnorm > 0) | (err > 0)))
    nonzero = gnorm > 0
    dot = 1.0 + fv[0] * gv[0] + fv[1] * gv[1]
    norms = np.sqrt((1.0 + fv[0] ** 2 + fv[1] ** 2) * (1.0 + gnorm**2))
    angle = np.degrees(np.arccos(np.clip(dot / norms, -1.0, 1.0)))
    zero_out = (gnorm > OUTLIER_PX) & (gnorm > OUTLIER_REL * gnorm)
    return FrameMetrics(
        n_valid=n,
        n_nonzero_gt=int(nonzero.sum()),
        aee=float(err.mean()),
        outlier_pct=100.0 * float(out_and.mean()),
        outlier_or_pct=100.0 * float(out_or.mean()),
        npe1=100.0 * float((err > 1).mean()),
        npe2=100.0 * float((err > 2).mean()),
        npe3=100.0 * float((err > 3).mean()),
        angular_error=float(angle.mean()),
        aee_rel=float((err[nonzero] / gnorm[nonzero]).mean()) if nonzero.any() else nan,
        zero_flow_aee=float(gnorm.mean()),
        zero_flow_outlier_pct=100.0 * float(zero_out.mean()),
        sum_error=float(err.sum()),
        sum_gt_norm=float(gnorm.sum()),
    )


# Per-frame means are summed over frames with |V| > 0 (frame averages); pixel sums give the pooled values.
_FIELDS = (
    "frames_seen",
    "frames",
    "frames_rel",
    "pixels",
    "sum_aee",
    "sum_outlier",
    "sum_outlier_or",
    "sum_npe1",
    "sum_npe2",
    "sum_npe3",
    "sum_angle",
    "sum_rel",
    "sum_zero_aee",
    "sum_zero_outlier",
    "pixel_error",
    "pixel_gt_norm",
)
_MEANS = {
    "aee": "sum_aee",
    "outlier_pct": "sum_outlier",
    "outlier_or_pct": "sum_outlier_or",
    "npe1": "sum_npe1",
    "npe2": "sum_npe2",
    "npe3": "sum_npe3",
    "angular_error": "sum_angle",
    "zero_flow_aee": "sum_zero_aee",
    "zero_flow_outlier_pct": "sum_zero_outlier",
}


class FlowMetricAccumulator:
    """Collects per-frame sums; mergeable across processes (a plain float64 vector of sums and counts).

    ``update`` scores one frame; ``compute`` returns ``n_frames`` (frames with |V| > 0), ``n_frames_seen``,
    ``n_valid_px``, ``aee``, ``aee_pooled``, ``outlier_pct``, ``outlier_or_pct``, ``npe1``, ``npe2``, ``npe3``,
    ``angular_error``, ``aee_rel``, ``zero_flow_aee``, ``zero_flow_aee_pooled`` and ``zero_flow_outlier_pct`` (NaN
    when no frame had a valid pixel). Under DDP call :meth:`sync` (an all-reduce of the sums) before ``compute``,
    or gather :meth:`state_vector` yourself and :meth:`merge` / :meth:`from_state_vector`.

    Args:
        rel_ref: reference magnitude of the AND outlier rule, ``'gt'`` or ``'pred'``.
    """

    FIELDS = _FIELDS

    def __init__(self, rel_ref: RelRef = "gt") -> None:
        _check_rel_ref(rel_ref)
        self.rel_ref: RelRef = rel_ref
        self._sums = np.zeros(len(_FIELDS), dtype=np.float64)

    def __getitem__(self, name: str) -> float:
        return float(self._sums[_FIELDS.index(name)])

    def _add(self, name: str, value: float) -> None:
        self._sums[_FIELDS.index(name)] += value

    def reset(self) -> None:
        """Forgets every frame."""
        self._sums[:] = 0.0

    def add_frame(self, m: FrameMetrics) -> None:
        """Adds the metrics of one already scored frame."""
        self._add("frames_seen", 1)
        if m.n_valid == 0:
            return
        self._add("frames", 1)
        self._add("pixels", m.n_valid)
        for key, field in _MEANS.items():
            self._add(field, getattr(m, key))
        if m.n_nonzero_gt > 0:
            self._add("frames_rel", 1)
            self._add("sum_rel", m.aee_rel)
        self._add("pixel_error", m.sum_error)
        self._add("pixel_gt_norm", m.sum_gt_norm)

    def update(
        self,
        pred: Any,
        gt: Any,
        *,
        events_mask: Any = None,
        crop: Crop | None = None,
        keep_zero_gt: bool = False,
        valid: Any = None,
    ) -> FrameMetrics:
        """Scores one frame and adds it.

        Args:
            pred: (2, h, w) predicted displacement in px over the GT interval at its own resolution (numpy or
                torch); upsampled to the GT resolution with rescaled components.
            gt: (2, H, W) GT displacement over the same interval (+inf / NaN where invalid).
            events_mask: (h', w') bool mask of pixels with events (None = dense); resized to (H, W) if needed.
            crop: ``(y0, x0, height, width)`` in GT pixels.
            keep_zero_gt: score pixels whose GT is exactly (0, 0).
            valid: a ready (H, W) mask; replaces ``events_mask``/``crop``/``keep_zero_gt``.

        Returns:
            The frame's :class:`FrameMetrics`.
        """
        if valid is None:
            valid = valid_mask(gt, events_mask=events_mask, crop=crop, keep_zero_gt=keep_zero_gt)
        m = frame_metrics(pred, gt, valid, self.rel_ref)
        self.add_frame(m)
        return m

    def state_vector(self) -> np.ndarray:
        """The sums and counts, in :attr:`FIELDS` order (a copy)."""
        return self._sums.copy()

    @classmethod
    def from_state_vector(cls, vector: Any, rel_ref: RelRef = "gt") -> FlowMetricAccumulator:
        """An accumulator holding ``vector`` (e.g. the sum of gathered :meth:`state_vector` s)."""
        acc = cls(rel_ref)
        acc.load_state_vector(vector)
        return acc

    def load_state_vector(self, vector: Any) -> None:
        """Replaces the sums by ``vector`` (numpy or torch, :attr:`FIELDS` order)."""
        v = as_numpy(vector).reshape(-1)
        if v.shape != self._sums.shape:
            message = f"state vector must have {len(_FIELDS)} entries, got {v.shape[0]}"
            raise ConfigError(message)
        self._sums = v.copy()

    def merge(self, other: FlowMetricAccumulator) -> FlowMetricAccumulator:
        """Adds the frames of ``other`` to this accumulator; returns self."""
        self._sums += other._sums
        return self

    def sync(self, device: Any = None) -> None:
        """Sums the accumulators of all processes in place (no-op unless torch.distributed is initialised).

        Args:
            device: the device of the reduction tensor; by default the current CUDA device under NCCL, else CPU.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if device is None and dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        tensor = torch.as_tensor(self._sums, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        self._sums = tensor.cpu().numpy().astype(np.float64)

    def compute(self) -> dict[str, float]:
        """The epoch / dataset metrics (see the class docstring)."""
        frames = self["frames"]
        pixels = self["pixels"]
        nan = float("nan")
        out: dict[str, float] = {
            "n_frames": frames,
            "n_frames_seen": self["frames_seen"],
            "n_valid_px": pixels,
        }
        for key, field in _MEANS.items():
            out[key] = self[field] / frames if frames > 0 else nan
        out["aee_pooled"] = self["pixel_error"] / pixels if pixels > 0 else nan
        out["zero_flow_aee_pooled"] = self["pixel_gt_norm"] / pixels if pixels > 0 else nan
        rel_frames = self["frames_rel"]
        out["aee_rel"] = self["sum_rel"] / rel_frames if rel_frames > 0 else nan
        return out


def evaluate_flow_sequence(
    flows: Any,
    starts: Any,
    delta_t: int,
    labels: FlowLabels,
    *,
    events: np.ndarray | None = None,
    sensor_shape: Sequence[int] | None = None,
    association: Literal["integrate", "scale"] = "integrate",
    crop: Crop | None = None,
    time_range: tuple[int, int] | None = None,
    dense: bool = False,
    keep_zero_gt: bool = False,
    rel_ref: RelRef = "gt",
    accumulator: FlowMetricAccumulator | None = None,
) -> FlowMetricAccumulator:
    """Scores a sequence of predictions against the GT frames of one recording.

    Every GT frame ``[g0, g1)`` inside ``time_range`` that the prediction bins cover is associated
    (:func:`associate_predictions`), upsampled to the GT resolution and scored on its valid mask.

    Args:
        flows: (N, 2, h, w) predictions in px per ``delta_t`` at the network resolution.
        starts: (N,) bin starts (us), in the time base of ``labels`` and ``events``.
        delta_t: bin length (us).
        labels: the GT (:func:`opsin.eventflow.io.flow_labels.read_flow_labels`).
        events: the recording's events (fields x, y, t); required unless ``dense``.
        sensor_shape: the events' (height, width); by default the labels' ``event_input_height/width``.
        association: ``'integrate'`` or ``'scale'``.
        crop: ``(y0, x0, height, width)`` in GT pixels (MVSEC: the central 256x256).
        time_range: ``(s0, s1)`` in us: only GT frames with s0 <= g0 and g1 <= s1 count.
        dense: drop the event mask (DSEC / synthetic dense style).
        keep_zero_gt: score pixels whose GT is exactly (0, 0).
        rel_ref: AND-rule reference magnitude.
        accumulator: add to this accumulator instead of a new one.

    Returns:
        The accumulator (``n_frames_seen`` counts the associated GT frames).

    Raises:
        ConfigError: no events while ``dense`` is False, or bad shapes / modes.
    """
    if events is None and not dense:
        message = "the event mask needs the events: pass events=... or dense=True"
        raise ConfigError(message)
    acc = FlowMetricAccumulator(rel_ref) if accumulator is None else accumulator
    gt_shape = labels.flow.shape[2:]
    sensor = sensor_shape or (labels.event_input_height, labels.event_input_width)
    if events is not None and events.size > 1 and not bool(np.all(events["t"][1:] >= events["t"][:-1])):
        events = events[np.argsort(events["t"], kind="stable")]
    skipped = 0
    for k in range(labels.flow.shape[0]):
        g0, g1 = int(labels.start_ts[k]), int(labels.end_ts[k])
        if time_range is not None and (g0 < time_range[0] or g1 > time_range[1]):
            continue
        pred = prediction_for_interval(flows, starts, delta_t, g0, g1, gt_shape, association)
        if pred is None:
            skipped += 1
            continue
        mask = None if events is None or dense else event_mask(events, g0, g1, gt_shape, sensor, assume_sorted=True)
        acc.update(pred, labels.flow[k], events_mask=mask, crop=crop, keep_zero_gt=keep_zero_gt)
    if skipped:
        _log.debug("%d GT frames not covered by the predictions were skipped", skipped)
    return acc
