"""Events -> feature tensors: the builders, their registry and :class:`CDProcessor`.

``PREPROCESSING_DICT[name]`` holds ``cin`` (channels with default kwargs), ``fn``, ``kwargs`` (defaults), ``viz``
(feature of one bin (C, H, W) -> uint8 RGB), ``micro_bins`` M, ``channels_per_micro_bin`` P and ``signed``.
``events_to_tensor_torch``, the torch twin of the builders, is imported on first use, so that the NumPy side never
pays torch's import time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from opsin.core import lazy_exports
from opsin.eventflow._features import diff, event_cube, event_cube_paper, histo, multi_channel_timesurface, timesurface
from opsin.eventflow._registry import (
    PREPROCESSING_DICT,
    get_cin,
    get_preprocess_info,
    register_new_preprocessing,
    viz_diff,
    viz_event_cube,
    viz_histo,
    viz_signed_cube,
    viz_timesurface,
)
from opsin.eventflow.errors import ConfigError

if TYPE_CHECKING:
    from opsin.eventflow._features_torch import events_to_tensor_torch

__all__ = [
    "PREPROCESSING_DICT",
    "CDProcessor",
    "diff",
    "downsampling_factor_for",
    "event_cube",
    "event_cube_paper",
    "events_to_tensor_torch",
    "get_cin",
    "get_preprocess_info",
    "histo",
    "multi_channel_timesurface",
    "register_new_preprocessing",
    "resize_features",
    "timesurface",
    "viz_diff",
    "viz_event_cube",
    "viz_histo",
    "viz_signed_cube",
    "viz_timesurface",
]

__getattr__, __dir__ = lazy_exports(__name__, {"events_to_tensor_torch": "opsin.eventflow._features_torch"}, globals())


def resize_features(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Shrinks (..., C, H, W) features to (height, width) with ``cv2.INTER_AREA`` per channel.

    Raises:
        ConfigError: the factor is not the same power of 2 on both axes.
    """
    import cv2

    h, w = array.shape[-2:]
    if (h, w) == (height, width):
        return array
    fy, fx = h / height, w / width
    if fy != fx or fy < 1 or fy != int(fy) or int(fy) & (int(fy) - 1):
        message = f"features of {h}x{w} cannot be resized to {height}x{width}: need one power-of-2 factor"
        raise ConfigError(message)
    lead = array.shape[:-2]
    flat = array.reshape(-1, h, w)
    out = np.empty((flat.shape[0], height, width), dtype=np.float32)
    for i, plane in enumerate(flat):
        out[i] = cv2.resize(plane.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return out.reshape(*lead, height, width)


class CDProcessor:
    """Turns a window of events into a (T, C, height, width) feature array.

    Args:
        height: output height (after downsampling).
        width: output width (after downsampling).
        num_tbins: number of time bins T.
        preprocessing: a key of :data:`PREPROCESSING_DICT`.
        downsampling_factor: coordinates are shifted right by this many bits.
        preprocess_kwargs: keyword arguments of the builder (defaults from the registry).

    Raises:
        ConfigError: unknown preprocessing or kwargs, or non-positive sizes.
    """

    def __init__(
        self,
        height: int,
        width: int,
        num_tbins: int = 5,
        preprocessing: str = "histo",
        downsampling_factor: int = 0,
        preprocess_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if height <= 0 or width <= 0 or num_tbins <= 0 or downsampling_factor < 0:
            message = f"CDProcessor needs positive sizes, got {height}x{width}, T={num_tbins}, ds={downsampling_factor}"
            raise ConfigError(message)
        self.info = get_preprocess_info(preprocessing, preprocess_kwargs)
        self.preprocessing = preprocessing
        self.height = int(height)
        self.width = int(width)
        self.num_tbins = int(num_tbins)
        self.downsampling_factor = int(downsampling_factor)
        self.preprocess_kwargs = dict(self.info["kwargs"])

    def get_array_dim(self) -> tuple[int, int, int, int]:
        """(T, C, H, W) of the produced arrays."""
        return (self.num_tbins, int(self.info["cin"]), self.height, self.width)

    def get_preprocess_dtype(self) -> np.dtype:
        """The dtype of the produced arrays (float32)."""
        return np.dtype(np.float32)

    def __call__(self, events: np.ndarray, delta_t: int | None = None, output: np.ndarray | None = None) -> np.ndarray:
        """Builds the features of ``events`` (t relative to the window start).

        Args:
            events: the events of the window.
            delta_t: the window length in us (default: last timestamp + 1, at least 1).
            output: an optional preallocated (T, C, H, W) float32 array.

        Returns:
            The feature array.
        """
        if delta_t is None:
            delta_t = int(events["t"].max()) + 1 if len(events) else 1
        out = output if output is not None else np.zeros(self.get_array_dim(), dtype=np.float32)
        self.info["fn"](events, out, delta_t, self.downsampling_factor, True, **self.preprocess_kwargs)
        return out


def downsampling_factor_for(sensor_hw: tuple[int, int], target_hw: tuple[int, int]) -> int:
    """The integer ds with sensor >> ds == target on both axes (sizes are rounded up as coordinates shift).

    Raises:
        ConfigError: no common integer power-of-2 factor.
    """
    (sh, sw), (th, tw) = sensor_hw, target_hw
    for ds in range(12):
        if math.ceil(sh / 2**ds) == th and math.ceil(sw / 2**ds) == tw:
            return ds
    message = f"sensor {sw}x{sh} cannot be downsampled to {tw}x{th} by a common power of 2"
    raise ConfigError(message)
