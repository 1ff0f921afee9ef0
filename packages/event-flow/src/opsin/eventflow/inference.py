"""Optical flow from event files with a trained network: streaming inference and flow videos.

::

    from opsin.eventflow.inference import infer_file, load_predictor, write_flow_video

    predictor = load_predictor()                     # the pretrained model; or ckpt=..., jit=...
    infer_file(predictor, "rec_td.dat", "rec_flow.h5")
    write_flow_video(predictor, "rec_td.dat", "flow.mp4", mode="dense")

The command-line equivalents are ``opsin-eventflow infer`` and ``opsin-eventflow demo``.
"""

from __future__ import annotations

from opsin.eventflow._flow_video import VIDEO_MODES, VideoResult, write_flow_video
from opsin.eventflow._infer import FlowWindow, InferenceResult, infer_file, iter_flow, window_range
from opsin.eventflow._predictor import FlowPredictor, ModelInfo, load_predictor

__all__ = [
    "VIDEO_MODES",
    "FlowPredictor",
    "FlowWindow",
    "InferenceResult",
    "ModelInfo",
    "VideoResult",
    "infer_file",
    "iter_flow",
    "load_predictor",
    "window_range",
    "write_flow_video",
]
