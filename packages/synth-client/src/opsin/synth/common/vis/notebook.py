"""Notebook display helpers ([analysis] extra): show an image, or a video as an animated GIF."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opsin.synth.common.vis._deps import require_analysis

require_analysis(__name__)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from opsin.synth.common.vis.videos import parse_video_frames, video_fps  # noqa: E402

__all__ = ["display_image", "display_video_as_gif", "video_to_gif"]


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # outside IPython there is nothing to show
        return
    display(obj)


def display_image(image: str | os.PathLike[str] | np.ndarray) -> Any:
    """Display an image file or an RGB array inline under IPython; returns the display object (``None`` without)."""
    try:
        from IPython.display import Image as IPyImage
    except ImportError:
        return None

    if isinstance(image, np.ndarray):
        import io

        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
        shown = IPyImage(data=buffer.getvalue(), format="png")
    else:
        shown = IPyImage(filename=str(image))
    _display(shown)
    return shown


def video_to_gif(
    video_path: str | os.PathLike[str],
    gif_path: str | os.PathLike[str] | None = None,
    *,
    max_frames: int = 300,
    scale: float = 1.0,
    fps: float | None = None,
) -> Path:
    """Convert a video to an animated GIF (next to the video by default); returns the GIF's path."""
    frames = parse_video_frames(video_path, max_frames=max_frames)
    if not frames:
        msg = f"{video_path}: no frames to convert"
        raise ValueError(msg)
    rate = fps if fps is not None else video_fps(video_path)
    images = [Image.fromarray(f) for f in frames]
    if scale != 1.0:
        size = (max(1, int(images[0].width * scale)), max(1, int(images[0].height * scale)))
        images = [im.resize(size) for im in images]
    out = Path(gif_path) if gif_path is not None else Path(video_path).with_suffix(".gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / rate), loop=0)
    return out


def display_video_as_gif(
    video_path: str | os.PathLike[str],
    gif_path: str | os.PathLike[str] | None = None,
    *,
    max_frames: int = 300,
    scale: float = 1.0,
) -> Path:
    """Convert a video to a GIF (see :func:`video_to_gif`) and display it inline; returns the GIF's path."""
    out = video_to_gif(video_path, gif_path, max_frames=max_frames, scale=scale)
    try:
        from IPython.display import Image as IPyImage
    except ImportError:
        return out
    _display(IPyImage(filename=str(out)))
    return out
