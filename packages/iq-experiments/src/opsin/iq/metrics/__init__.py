"""Metrics: the ``Metric`` base, COCO detection metrics, SNR and sharpness (RER, FWHM, MTF)."""

from opsin.iq.metrics.detection_metrics import BBDetectionMetrics, coco_eval_metrics_names
from opsin.iq.metrics.metric import Metric
from opsin.iq.metrics.sharpness_metric import (
    SharpnessMeasure,
    SharpnessMetric,
    mtf_from_array,
    sharpness_function_from_array,
    sharpness_function_from_fn,
)
from opsin.iq.metrics.snr_metric import (
    SNRHomogeneousArea,
    SNRHomogeneousBlocks,
    SNRMetric,
    snr_function_from_array,
    snr_function_from_fn,
)

__all__ = [
    "BBDetectionMetrics",
    "Metric",
    "SNRHomogeneousArea",
    "SNRHomogeneousBlocks",
    "SNRMetric",
    "SharpnessMeasure",
    "SharpnessMetric",
    "coco_eval_metrics_names",
    "mtf_from_array",
    "sharpness_function_from_array",
    "sharpness_function_from_fn",
    "snr_function_from_array",
    "snr_function_from_fn",
]
