"""A classical baseline: OpenCV's Farneback dense optical flow on accumulated event frames.

For window k = ``[t_start + k*delta_t, t_start + (k+1)*delta_t)`` the events of the window and of the next window
are accumulated into two event-count images (ON and OFF together), optionally blurred, normalised to uint8 with a
common scale, and ``cv2.calcOpticalFlowFarneback(image_k, image_k+1)`` gives the displacement from one window to the
next, i.e. a forward flow in pixels per ``delta_t`` at the sensor resolution: the same convention as the network's
predictions, so the metrics treat both alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from opsin.eventflow.errors import ConfigError

__all__ = ["FarnebackParams", "event_count_image", "farneback_flows", "iter_farneback_flows"]


@dataclass(frozen=True)
class FarnebackParams:
    """Parameters of the Farneback baseline.

    The defaults were chosen on synthetic 320x240 recordings with 50 ms windows (``opsin-eventflow synth``, seeds 11
    clean and 12 noisy, not the benchmark seeds): event-masked AEE 0.25 px (clean) and 1.13 px (noisy) against 4.19
    and 4.74 px for zero flow. A large averaging window matters most on sparse event images: winsize 21 with
    poly_n 7 gave 0.83 and 2.23 px. Larger windows still help on those globally smooth motions but blur motion
    boundaries, so 41 is kept.

    Attributes:
        pyr_scale: image scale between pyramid levels.
        levels: pyramid levels (4 reaches displacements of tens of pixels).
        winsize: averaging window (px); larger is more robust on sparse event images, and smoother.
        iterations: iterations per pyramid level.
        poly_n: neighbourhood of the per-pixel polynomial expansion (5 or 7).
        poly_sigma: Gaussian sigma of that expansion (1.1 for poly_n 5, 1.5 for 7).
        gaussian_window: use a Gaussian instead of a box averaging window.
        blur_sigma: Gaussian blur (px) of each count image before normalisation (0 = none).
        percentile: the percentile of the non-zero (blurred) counts of both images together that maps to 255.
        min_events: a window whose own or next image holds fewer events has nothing reliable to match and keeps
            the previous window's flow (the last window of a recording is often almost empty).
    """

    pyr_scale: float = 0.5
    levels: int = 4
    winsize: int = 41
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.1
    gaussian_window: bool = True
    blur_sigma: float = 0.0
    percentile: float = 99.0
    min_events: int = 100


def _is_sorted(t: np.ndarray) -> bool:
    return t.size < 2 or bool(np.all(t[1:] >= t[:-1]))


def event_count_image(
    events: np.ndarray, t0: int, t1: int, height: int, width: int, *, assume_sorted: bool = False
) -> np.ndarray:
    """The number of events (both polarities) per pixel in ``[t0, t1)`` as a (height, width) float32 image.

    ``assume_sorted`` skips the O(N) check that allows a binary search of the window.
    """
    t = events["t"]
    if assume_sorted or _is_sorted(t):
        lo, hi = np.searchsorted(t, [t0, t1], side="left")
        sel = events[lo:hi]
    else:
        sel = events[(t >= t0) & (t < t1)]
    if sel.size == 0:
        return np.zeros((height, width), dtype=np.float32)
    x = sel["x"].astype(np.int64)
    y = sel["y"].astype(np.int64)
    if x.max() >= width or y.max() >= height:
        message = f"events reach ({int(x.max())}, {int(y.max())}) outside the image size {width}x{height}"
        raise ConfigError(message)
    counts = np.bincount(y * width + x, minlength=height * width)
    return counts.reshape(height, width).astype(np.float32)


def _to_uint8(a: np.ndarray, b: np.ndarray, params: FarnebackParams) -> tuple[np.ndarray, np.ndarray]:
    if params.blur_sigma > 0:
        a = cv2.GaussianBlur(a, (0, 0), params.blur_sigma)
        b = cv2.GaussianBlur(b, (0, 0), params.blur_sigma)
    both = np.concatenate([a[a > 0], b[b > 0]])
    top = float(np.percentile(both, params.percentile)) if both.size else 1.0
    scale = 255.0 / max(top, 1e-6)
    return (
        np.clip(a * scale, 0, 255).astype(np.uint8),
        np.clip(b * scale, 0, 255).astype(np.uint8),
    )


def farneback_flows(
    events: np.ndarray,
    delta_t: int,
    height: int,
    width: int,
    *,
    t_start: int = 0,
    num_windows: int | None = None,
    params: FarnebackParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Farneback flow for consecutive event windows.

    Args:
        events: structured events (fields x, y, t), ideally sorted by t.
        delta_t: window length (us).
        height: image height (the events' sensor height).
        width: image width.
        t_start: start of window 0 (us).
        num_windows: number of windows; by default up to the one holding the last event.
        params: :class:`FarnebackParams` (defaults if None).

    Returns:
        ``(flows, starts)``: (N, 2, height, width) float32 forward flows in px per ``delta_t`` and the (N,) int64
        window starts. A window whose own or next image has fewer than ``params.min_events`` events gets the previous
        window's flow (zero for the first one), since Farneback has nothing to match there.

    Raises:
        ConfigError: ``delta_t <= 0``, a non-positive size, or events outside the image.
    """
    if delta_t <= 0 or height <= 0 or width <= 0:
        message = f"need delta_t, height and width > 0, got {delta_t}, {height}, {width}"
        raise ConfigError(message)
    if not _is_sorted(events["t"]):
        events = events[np.argsort(events["t"], kind="stable")]
    if num_windows is None:
        last = int(events["t"].max()) if events.size else t_start
        num_windows = max(0, -(-(last + 1 - t_start) // delta_t))
    flows = np.zeros((num_windows, 2, height, width), dtype=np.float32)
    starts = t_start + np.arange(num_windows, dtype=np.int64) * delta_t

    def image(t0: int, t1: int) -> np.ndarray:
        return event_count_image(events, t0, t1, height, width, assume_sorted=True)

    for k, (_, flow) in enumerate(iter_farneback_flows(image, delta_t, t_start, num_windows, params)):
        flows[k] = flow
    return flows, starts


def iter_farneback_flows(
    image: Callable[[int, int], np.ndarray],
    delta_t: int,
    t_start: int,
    num_windows: int,
    params: FarnebackParams | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Farneback flow window by window, from event-count images made on demand (a recording need not fit in memory).

    Args:
        image: ``image(t0, t1)``, the (H, W) event-count image of ``[t0, t1)``.
        delta_t: window length (us).
        t_start: start of window 0 (us).
        num_windows: number of windows.
        params: :class:`FarnebackParams` (defaults if None).

    Yields:
        ``(start, flow)`` per window: the (2, H, W) float32 forward flow in px per ``delta_t``; a window whose own or
        next image has fewer than ``params.min_events`` events repeats the previous window's flow (zero at first).
    """
    p = params or FarnebackParams()
    flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if p.gaussian_window else 0
    current = image(t_start, t_start + delta_t)
    previous = np.zeros((2, *current.shape), dtype=np.float32)
    for k in range(num_windows):
        t1 = t_start + (k + 1) * delta_t
        following = image(t1, t1 + delta_t)
        if min(current.sum(), following.sum()) >= max(p.min_events, 1):
            a, b = _to_uint8(current, following, p)
            raw = cv2.calcOpticalFlowFarneback(
                a,
                b,
                np.zeros((*current.shape, 2), np.float32),
                p.pyr_scale,
                p.levels,
                p.winsize,
                p.iterations,
                p.poly_n,
                p.poly_sigma,
                flags,
            )
            previous = np.ascontiguousarray(raw.transpose(2, 0, 1), dtype=np.float32)
        yield t1 - delta_t, previous
        current = following
