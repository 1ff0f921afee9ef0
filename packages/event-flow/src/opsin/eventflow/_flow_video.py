"""Flow videos of a recording: what a person looks at to judge a flow model.

Each frame is one network window. ``arrows`` draws flow arrows over the event image, ``dense`` colours every pixel
by direction (hue) and speed (brightness), and ``sharp`` shows the raw window beside the same window with every
micro-bin warped onto the first by the predicted flow: a good flow turns motion blur into sharp edges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from opsin.core import atomic_path, get_logger, progress
from opsin.eventflow._infer import window_range
from opsin.eventflow._predictor import FlowPredictor
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io import open_events
from opsin.eventflow.preprocessing import PREPROCESSING_DICT, CDProcessor
from opsin.eventflow.viz import draw_arrows, draw_dense_flow

__all__ = ["VIDEO_MODES", "VideoResult", "write_flow_video"]

VIDEO_MODES = ("arrows", "dense", "sharp")
_log = get_logger(__name__)


@dataclass(frozen=True)
class VideoResult:
    """What :func:`write_flow_video` wrote.

    Attributes:
        path: the mp4 file.
        frames: number of frames.
        fps: frames per second (one frame per network window, in real time).
        width: frame width in pixels.
        height: frame height in pixels.
        seconds: wall time.
    """

    path: Path
    frames: int
    fps: int
    width: int
    height: int
    seconds: float


def _label(img: np.ndarray, text: str) -> None:
    cv2.putText(img, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


@torch.no_grad()
def _sharpen(predictor: FlowPredictor, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    network = predictor.network
    if not hasattr(network, "sharpen"):
        message = "--mode sharp needs a checkpoint or the pretrained model (a TorchScript export cannot sharpen)"
        raise ConfigError(message)
    c, h, w = features.shape
    s = predictor.stride
    ph, pw = -(-h // s) * s, -(-w // s) * s
    x = torch.zeros((1, 1, c, ph, pw), dtype=torch.float32, device=predictor.device)
    x[0, 0, :, :h, :w] = torch.from_numpy(features)
    flow, sharp = network.sharpen(
        x, preprocess=predictor.info.preprocess, preprocess_kwargs=predictor.info.preprocess_kwargs
    )
    return (
        flow.reshape(2, ph, pw)[:, :h, :w].float().cpu().numpy(),
        sharp.reshape(c, ph, pw)[:, :h, :w].float().cpu().numpy(),
    )


def write_flow_video(
    predictor: FlowPredictor,
    events_path: str | Path,
    out: str | Path,
    mode: str = "arrows",
    step: int = 8,
    max_duration: int | None = None,
    mask_by_events: bool = True,
    show_progress: bool = True,
) -> VideoResult:
    """Write an mp4 of the predicted flow of a recording, one frame per network window from t = 0.

    Args:
        predictor: the network.
        events_path: a DAT, EVT 2.0/3.0 RAW or HDF5 event file.
        out: the mp4 to write (atomically: a failed run leaves no partial video).
        mode: ``arrows``, ``dense`` or ``sharp``.
        step: arrow spacing in pixels (``arrows``).
        max_duration: only the first this many microseconds.
        mask_by_events: draw flow only where the window has events.
        show_progress: draw a progress bar on a terminal.

    Returns:
        A :class:`VideoResult`.

    Raises:
        ConfigError: unknown mode, non-positive step or duration, or a recording without events.
        FileNotFoundError: no such event file.
        FormatError: the event file cannot be decoded.
    """
    if mode not in VIDEO_MODES:
        message = f"--mode must be one of {', '.join(VIDEO_MODES)}, got {mode!r}"
        raise ConfigError(message)
    if step <= 0:
        message = f"--step must be a positive number of pixels, got {step}"
        raise ConfigError(message)
    if max_duration is not None and max_duration <= 0:
        message = f"--max-duration must be a positive number of microseconds, got {max_duration}"
        raise ConfigError(message)
    began = time.perf_counter()
    info = predictor.info
    dt = int(info.delta_t)
    fps = max(1, round(1e6 / dt))
    viz = PREPROCESSING_DICT[info.preprocess]["viz"]
    with open_events(events_path) as reader:
        if reader.event_count == 0:
            message = f"{events_path}: the recording holds no events, so there is no flow to show"
            raise ConfigError(message)
        h, w = reader.height, reader.width
        windows = window_range(reader.duration_us, dt, (0, max_duration) if max_duration else None)
        processor = CDProcessor(h, w, 1, info.preprocess, 0, info.preprocess_kwargs)
        features = np.zeros(processor.get_array_dim(), dtype=np.float32)
        frame_w = 2 * w if mode == "sharp" else w
        predictor.reset()
        reader.seek_time(0)
        frames = 0
        with atomic_path(out) as tmp:
            writer = cv2.VideoWriter(str(tmp) + ".mp4", cv2.VideoWriter.fourcc(*"mp4v"), fps, (frame_w, h))
            if not writer.isOpened():
                message = f"{out}: OpenCV cannot open an mp4 writer here (mp4v codec)"
                raise ConfigError(message)
            try:
                items = progress(windows, total=len(windows), desc="video", unit="frame") if show_progress else windows
                for k in items:
                    events = np.array(reader.load_delta_t(dt), copy=True)
                    events["t"] -= k * dt
                    features.fill(0.0)
                    processor(events, dt, output=features)
                    feature = features[0]
                    image = viz(feature)
                    mask = np.abs(feature).max(axis=0) > 0 if mask_by_events else None
                    if mode == "sharp":
                        _, sharp = _sharpen(predictor, feature)
                        frame = np.concatenate([image, viz(sharp)], axis=1)
                        _label(frame, f"raw  t={k * dt / 1000:.0f} ms")
                        _label(frame[:, w:], "sharpened by the flow")
                    else:
                        flow = predictor.predict(feature)
                        if mode == "arrows":
                            frame = draw_arrows(image, flow, step=step, threshold_px=0.5, mask=mask)
                        else:
                            frame = draw_dense_flow(image, flow, mask)
                        _label(frame, f"t={k * dt / 1000:.0f} ms")
                    writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
                    frames += 1
            except BaseException:
                writer.release()
                Path(str(tmp) + ".mp4").unlink(missing_ok=True)
                raise
            writer.release()
            Path(str(tmp) + ".mp4").replace(tmp)
    seconds = time.perf_counter() - began
    _log.info("%s: %d frames at %d fps in %.1f s", out, frames, fps, seconds)
    return VideoResult(Path(out), frames, fps, frame_w, h, seconds)
