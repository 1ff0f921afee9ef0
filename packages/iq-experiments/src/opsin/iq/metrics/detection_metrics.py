"""``BBDetectionMetrics``: COCO detection metrics (pycocotools ``COCOeval``) under readable names."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from opsin.core import get_logger
from opsin.iq.errors import AnnotationFormatError
from opsin.iq.metrics.metric import Metric

__all__ = ["BBDetectionMetrics", "coco_eval_metrics_names"]

logger = get_logger(__name__)

#: Names of the 12 ``COCOeval.stats`` values, in order.
coco_eval_metrics_names: list[str] = [
    "ap_0.5-0.95_all",
    "ap_0.5_all",
    "ap_0.75_all",
    "ap_0.5-0.95_small",
    "ap_0.5-0.95_medium",
    "ap_0.5-0.95_large",
    "ar_0.5-0.95_all_det_1",
    "ar_0.5-0.95_all_det_10",
    "ar_0.5-0.95_all",
    "ar_0.5-0.95_small",
    "ar_0.5-0.95_medium",
    "ar_0.5-0.95_large",
]


class BBDetectionMetrics(Metric):
    """COCO evaluation of detections against ground truth.

    Args:
        iou_type: ``"bbox"`` (default) or ``"segm"``.
    """

    name = "bbdetection"

    def __init__(self, iou_type: str = "bbox") -> None:
        if iou_type not in ("bbox", "segm"):
            msg = f"iou_type must be 'bbox' or 'segm', got {iou_type!r}"
            raise ValueError(msg)
        self.iou_type = iou_type
        self.metric_names = list(coco_eval_metrics_names)

    def apply(self, predictions: str | list[dict[str, Any]], gt_path: str) -> dict[str, float]:
        """Evaluate.

        Args:
            predictions: a COCO result file (a list of detections), or that list.
            gt_path: the COCO ground-truth json.

        Returns:
            ``{name: value}`` for the 12 standard statistics (-1 where no ground truth of that size exists).

        Raises:
            AnnotationFormatError: a file is not COCO (names the file).
        """
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                gt = COCO(gt_path)
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            msg = f"ground truth {gt_path} is not a COCO annotation file: {exc!r}"
            raise AnnotationFormatError(msg) from exc
        dets = predictions
        if isinstance(predictions, str):
            try:
                with open(predictions, encoding="utf-8") as fh:
                    dets = json.load(fh)
            except ValueError as exc:
                msg = f"predictions {predictions} are not valid JSON: {exc}"
                raise AnnotationFormatError(msg) from exc
        if isinstance(dets, dict) and "annotations" in dets:
            dets = dets["annotations"]
        if not isinstance(dets, list) or not dets:
            where = predictions if isinstance(predictions, str) else "(list)"
            msg = f"predictions {where}: expected a non-empty COCO result list"
            raise AnnotationFormatError(msg)
        try:
            with contextlib.redirect_stdout(log):
                dt = gt.loadRes(dets)
                ev = COCOeval(gt, dt, self.iou_type)
                ev.params.imgIds = sorted(gt.getImgIds())
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
        except (KeyError, TypeError, AssertionError, IndexError) as exc:
            msg = f"predictions do not match ground truth {gt_path}: {exc!r}"
            raise AnnotationFormatError(msg) from exc
        logger.info("COCOeval (%s):\n%s", self.iou_type, log.getvalue())
        return {name: float(v) for name, v in zip(self.metric_names, ev.stats, strict=True)}
