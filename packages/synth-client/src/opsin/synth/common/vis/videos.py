"""Video helpers ([analysis] extra): read frames, write mp4, stack videos side by side, build grids of videos."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from opsin.synth.common.vis._deps import require_analysis

require_analysis(__name__)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["create_grid_of_videos", "parse_video_frames", "stack_videos", "video_fps", "write_video"]

_FOURCC = "mp4v"


def parse_video_frames(video_path: str | os.PathLike[str], max_frames: int | None = None) -> list[np.ndarray]:
    """Read every frame of a video as RGB ``uint8`` arrays ``(H, W, 3)``.

    Args:
        video_path: the video file.
        max_frames: stop after this many frames.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: OpenCV cannot open it.
    """
    path = Path(video_path)
    if not path.is_file():
        msg = f"no video at {path}"
        raise FileNotFoundError(msg)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        msg = f"{path}: OpenCV cannot open this video"
        raise ValueError(msg)
    frames: list[np.ndarray] = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames


def video_fps(video_path: str | os.PathLike[str], default: float = 24.0) -> float:
    """Frames per second stored in a video (``default`` when unknown)."""
    capture = cv2.VideoCapture(str(video_path))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
    return fps if fps > 0 else default


def write_video(frames: Sequence[np.ndarray], output_path: str | os.PathLike[str], fps: float) -> str:
    """Write RGB frames (all the same size) as an MPEG-4 Part 2 (``mp4v``) video; returns the path.

    Raises:
        ValueError: no frames, or frames of different sizes.
    """
    if not frames:
        msg = f"no frames to write to {output_path}"
        raise ValueError(msg)
    height, width = frames[0].shape[:2]
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*_FOURCC), float(fps), (int(width), int(height)))
    if not writer.isOpened():
        msg = f"{path}: OpenCV cannot open an {_FOURCC} writer"
        raise ValueError(msg)
    try:
        for index, frame in enumerate(frames):
            if frame.shape[:2] != (height, width):
                msg = f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, expected {width}x{height} ({path})"
                raise ValueError(msg)
            rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
            writer.write(cv2.cvtColor(np.ascontiguousarray(rgb[..., :3], dtype=np.uint8), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return str(path)


def _fit(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def stack_videos(videos: Sequence[Sequence[np.ndarray]], axis: int = 1) -> list[np.ndarray]:
    """Stack videos frame by frame: side by side (``axis=1``) or on top of each other (``axis=0``).

    Frames are resized to the first video's frame size; shorter videos hold their last frame; the result has as many
    frames as the longest video (black frames stand in for an empty video).
    """
    if not videos:
        return []
    first = next((v[0] for v in videos if len(v)), None)
    if first is None:
        return []
    height, width = first.shape[:2]
    length = max(len(v) for v in videos)
    blank = np.zeros((height, width, 3), np.uint8)
    out = []
    for index in range(length):
        row = [_fit(v[min(index, len(v) - 1)], height, width) if len(v) else blank for v in videos]
        out.append(np.concatenate(row, axis=axis))
    return out


def create_grid_of_videos(
    video_paths: Sequence[str | os.PathLike[str]],
    output_path: str | os.PathLike[str],
    num_cols: int = 3,
    fps: float | None = None,
) -> str:
    """Tile videos into one grid video (row-major, ``num_cols`` per row); returns the output path.

    Args:
        video_paths: the videos (the first one's frame size and fps are used).
        output_path: the grid video to write.
        num_cols: videos per row; missing cells of the last row are black.
        fps: frames per second of the output (default: the first video's).
    """
    if not video_paths:
        msg = "no videos to tile"
        raise ValueError(msg)
    clips = [parse_video_frames(p) for p in video_paths]
    rows = []
    for start in range(0, len(clips), num_cols):
        row = list(clips[start : start + num_cols])
        while len(row) < num_cols:
            row.append([])
        rows.append(stack_videos(row, axis=1))
    grid = stack_videos(rows, axis=0)
    return write_video(grid, output_path, fps if fps is not None else video_fps(video_paths[0]))
