"""Flow pictures: arrows, dense HSV colour coding and batch grids.

Every function takes numpy arrays (torch tensors are accepted and copied to the CPU), returns a new uint8 RGB
image of shape (H, W, 3) (``draw_flow_on_grid`` fills the grid it is given) and never modifies its inputs. Flow is
(2, H, W) in pixels, u (to the right) first, v (downwards) second. Colours follow OpenCV's HSV: the hue is the flow
direction atan2(v, u) in degrees (0-360) halved to OpenCV's 0-179 range, so a flow to the right is red.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from opsin.eventflow._association import as_numpy, upsample_flow
from opsin.eventflow.errors import ConfigError

__all__ = [
    "convert_to_gray",
    "draw_arrows",
    "draw_dense_flow",
    "draw_flow_on_grid",
    "get_arrows",
    "get_dense_flow",
]

# ITU-R BT.601 luma weights of R, G and B.
_LUMA = np.array([0.299, 0.587, 0.114])


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    return np.asarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def convert_to_gray(img: Any) -> np.ndarray:
    """A gray version of an image, stacked to 3 identical channels.

    Args:
        img: (H, W, 3) RGB, (H, W, 1) or (H, W) image (uint8, or float in 0-255).

    Returns:
        (H, W, 3) uint8 image.
    """
    a = as_numpy(img, None)
    if a.ndim == 3 and a.shape[2] == 3:
        gray = a.astype(np.float64) @ _LUMA
    elif a.ndim == 3 and a.shape[2] == 1:
        gray = a[..., 0]
    elif a.ndim == 2:
        gray = a
    else:
        message = f"image must be (H, W), (H, W, 1) or (H, W, 3), got {a.shape}"
        raise ConfigError(message)
    return np.repeat(_to_uint8(np.asarray(gray))[..., None], 3, axis=2)


def _as_rgb(img: Any, gray: bool) -> np.ndarray:
    a = as_numpy(img, None)
    if gray or a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return convert_to_gray(a)
    if a.ndim != 3 or a.shape[2] != 3:
        message = f"image must be (H, W), (H, W, 1) or (H, W, 3), got {a.shape}"
        raise ConfigError(message)
    return np.array(_to_uint8(a), copy=True)


def _check_flow(flow: np.ndarray, shape: tuple[int, ...]) -> None:
    if flow.ndim != 3 or flow.shape[0] != 2 or flow.shape[1:] != shape:
        message = f"flow must have shape (2, {shape[0]}, {shape[1]}) to match the image, got {tuple(flow.shape)}"
        raise ConfigError(message)


def _hue(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Direction in degrees 0-360 halved to OpenCV's hue range (0-180, 180 wrapped to 0)."""
    degrees = np.degrees(np.arctan2(v, u)) % 360.0
    return np.asarray(np.rint(degrees / 2.0) % 180)


def draw_arrows(
    img: Any,
    flow: Any,
    step: int = 16,
    threshold_px: float = 1,
    convert_img_to_gray: bool = True,
    mask: Any = None,
    thickness: int = 1,
) -> np.ndarray:
    """Draws one flow arrow every ``step`` pixels on a copy of ``img``.

    At (x, y) = (j * step, i * step) for i < ceil(H / step), j < ceil(W / step) (the last partial row and column
    included), an arrow goes from (x, y) to (round(x + u), round(y + v)) when the flow length sqrt(u^2 + v^2) is
    at least ``threshold_px`` and ``mask[y, x]`` is true (if a mask is given). Its colour is the HSV hue of the
    direction at full saturation and value.

    Args:
        img: (H, W, 3), (H, W, 1) or (H, W) image.
        flow: (2, H, W) flow in px.
        step: grid spacing (px).
        threshold_px: minimum arrow length (px).
        convert_img_to_gray: make the background gray first (1-channel images always are).
        mask: optional (H, W) bool array; arrows are drawn only where it is true.
        thickness: line thickness (px).

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    if step < 1:
        message = f"step must be >= 1, got {step}"
        raise ConfigError(message)
    out = _as_rgb(img, convert_img_to_gray)
    h, w = out.shape[:2]
    f = as_numpy(flow)
    _check_flow(f, (h, w))
    ys = np.arange(0, h, step)
    xs = np.arange(0, w, step)
    u = f[0][np.ix_(ys, xs)]
    v = f[1][np.ix_(ys, xs)]
    draw = np.hypot(u, v) >= threshold_px
    if mask is not None:
        draw &= as_numpy(mask, bool)[np.ix_(ys, xs)]
    hsv = np.zeros((*u.shape, 3), dtype=np.uint8)
    hsv[..., 0] = _hue(u, v)
    hsv[..., 1:] = 255
    colours = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    for i, j in zip(*np.nonzero(draw)):
        x, y = int(xs[j]), int(ys[i])
        tip = (round(x + float(u[i, j])), round(y + float(v[i, j])))
        colour = tuple(int(c) for c in colours[i, j])
        cv2.arrowedLine(out, (x, y), tip, colour, thickness)
    return out


def get_arrows(flow: Any, base_img: Any = None, step: int = 8, mask: Any = None) -> np.ndarray:
    """Arrows of a (2, H, W) flow (torch or numpy) over ``base_img``, on a black canvas by default."""
    f = as_numpy(flow)
    canvas = np.zeros((*f.shape[1:], 3), dtype=np.uint8) if base_img is None else base_img
    return draw_arrows(canvas, f, step=step, mask=mask)


def draw_dense_flow(img: Any, flow: Any, mask: Any = None) -> np.ndarray:
    """Dense HSV colour coding of a flow blended over a gray version of ``img``.

    Hue = direction (degrees / 2), saturation 255, value = the flow magnitude min-max normalised to 0-255 over the
    image (all zero when the magnitude is constant); pixels where ``mask`` is false count as zero flow. The output
    is 0.3 * gray(img) + 0.7 * colour.

    Args:
        img: (H, W, 3), (H, W, 1) or (H, W) image.
        flow: (2, H, W) flow in px.
        mask: optional (H, W) bool array of pixels to colour.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    gray = convert_to_gray(img)
    h, w = gray.shape[:2]
    f = as_numpy(flow)
    _check_flow(f, (h, w))
    if mask is not None:
        f = np.where(as_numpy(mask, bool)[None], f, 0.0)
    magnitude = np.hypot(f[0], f[1])
    lo, hi = float(magnitude.min()), float(magnitude.max())
    value = (magnitude - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(magnitude)
    hsv = np.empty((h, w, 3), dtype=np.uint8)
    hsv[..., 0] = _hue(f[0], f[1])
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(np.rint(value), 0, 255)
    colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return _to_uint8(0.3 * gray.astype(np.float64) + 0.7 * colour.astype(np.float64))


def get_dense_flow(flow: Any, base_img: Any = None, mask: Any = None) -> np.ndarray:
    """Dense colour coding of a (2, H, W) flow (torch or numpy) over ``base_img``, black by default."""
    f = as_numpy(flow)
    canvas = np.zeros((*f.shape[1:], 3), dtype=np.uint8) if base_img is None else base_img
    return draw_dense_flow(canvas, f, mask)


def _level(flows: Sequence[Any] | Any, scale: int, t_len: int, batch: int) -> np.ndarray:
    level = as_numpy(flows[scale], np.float32)
    if level.ndim == 4 and level.shape[0] == t_len * batch:
        level = level.reshape(t_len, batch, *level.shape[1:])
    if level.ndim != 5 or level.shape[:3] != (t_len, batch, 2):
        message = f"flow level must be (T, B, 2, h, w) or (T*B, 2, h, w) with T={t_len}, B={batch}, got {level.shape}"
        raise ConfigError(message)
    return level


def draw_flow_on_grid(
    input_tensor: Any,
    flows: Sequence[Any],
    grid: np.ndarray,
    make_img_fun: Callable[[np.ndarray], np.ndarray],
    scale: int = -1,
    step: int = 8,
    mask_by_input: bool = True,
    draw_dense: bool = False,
) -> np.ndarray:
    """Fills a grid of tiles with the flow of every sample of a batch, for each time bin.

    Sample b of bin t goes to tile (b // ncols, b % ncols) of ``grid[t]``, with ncols = grid width // W; the tile
    shows arrows (or the dense coding) of ``flows[scale][t, b]`` over ``make_img_fun(input_tensor[t, b])``. A flow
    level smaller than (H, W) is resized bilinearly with its components scaled by W / w and H / h.

    Args:
        input_tensor: (T, B, C, H, W) network input (numpy or torch).
        flows: flow levels, each (T, B, 2, h, w) or (T * B, 2, h, w) (coarsest first, as the network returns them).
        grid: (T, m * H, n * W, 3) uint8 with m * n >= B, filled in place.
        make_img_fun: feature of one sample (C, H, W) -> (H, W, 3) uint8 background.
        scale: index of the flow level to draw.
        step: arrow spacing (px).
        mask_by_input: draw only where the input has events (sum over channels of |input| > 0).
        draw_dense: dense HSV coding instead of arrows.

    Returns:
        ``grid``.
    """
    x = as_numpy(input_tensor, np.float32)
    if x.ndim != 5:
        message = f"input_tensor must be (T, B, C, H, W), got {x.shape}"
        raise ConfigError(message)
    t_len, batch, _, h, w = x.shape
    rows, ncols = grid.shape[1] // h, grid.shape[2] // w
    if grid.ndim != 4 or grid.shape[0] < t_len or grid.shape[3] != 3 or rows * ncols < batch:
        message = f"grid {grid.shape} cannot hold T={t_len} frames of {batch} tiles of {h}x{w}"
        raise ConfigError(message)
    level = _level(flows, scale, t_len, batch)
    for t in range(t_len):
        for b in range(batch):
            flow = upsample_flow(level[t, b], (h, w))
            mask = np.abs(x[t, b]).sum(axis=0) > 0 if mask_by_input else None
            background = make_img_fun(x[t, b])
            tile = (
                draw_dense_flow(background, flow, mask)
                if draw_dense
                else draw_arrows(background, flow, step=step, mask=mask)
            )
            r, c = divmod(b, ncols)
            grid[t, r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return grid
