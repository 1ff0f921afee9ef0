"""Events -> feature tensors: the builders of section 4, their registry and :class:`CDProcessor`.

``PREPROCESSING_DICT[name]`` holds ``cin`` (channels with default kwargs), ``fn``, ``kwargs`` (defaults), ``viz``
(feature of one bin (C, H, W) -> uint8 RGB), ``micro_bins`` M, ``channels_per_micro_bin`` P and ``signed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from opsin.eventflow._features import diff, event_cube, event_cube_paper, histo, multi_channel_timesurface, timesurface
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
    "viz_timesurface",
]


def _grey(value: np.ndarray) -> np.ndarray:
    img = (127 + 128 * np.clip(value, -1, 1)).clip(0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def viz_histo(feature: np.ndarray) -> np.ndarray:
    """Grey 127 + 128 * clip(ON - OFF, -1, 1) of a (2, H, W) histogram (channel 1 = ON)."""
    return _grey(feature[1].astype(np.float64) - feature[0])


def viz_diff(feature: np.ndarray) -> np.ndarray:
    """Grey 127 + 128 * clip(V, -1, 1) of a (1, H, W) signed difference."""
    return _grey(feature[0].astype(np.float64))


def viz_event_cube(feature: np.ndarray) -> np.ndarray:
    """Grey 127 + 128 * clip(sum ON - sum OFF, -1, 1) of a split-polarity cube (odd channels ON)."""
    f = feature.astype(np.float64)
    return _grey(f[1::2].sum(0) - f[0::2].sum(0))


def viz_signed_cube(feature: np.ndarray) -> np.ndarray:
    """Grey 127 + 128 * clip(sum of channels, -1, 1) of a signed cube."""
    return _grey(feature.astype(np.float64).sum(0))


def viz_timesurface(feature: np.ndarray) -> np.ndarray:
    """255 * max over channels of a (normed) timesurface, as grey RGB."""
    img = (255 * np.clip(feature.max(0), 0, 1)).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


PREPROCESSING_DICT: dict[str, dict[str, Any]] = {}


def register_new_preprocessing(
    name: str,
    cin: int,
    fn: Callable[..., None],
    viz: Callable[[np.ndarray], np.ndarray],
    kwargs: Mapping[str, Any] | None = None,
    micro_bins: int = 1,
    channels_per_micro_bin: int | None = None,
    signed: bool = False,
) -> None:
    """Adds (or replaces) a preprocessing in :data:`PREPROCESSING_DICT`.

    Args:
        name: the registry key (``events_to_tensor`` attribute of feature files).
        cin: number of channels per time bin with the default kwargs.
        fn: the builder ``fn(events, output_array, total_tbins_delta_t, downsampling_factor=0, reset=True, **kw)``.
        viz: feature of one bin (C, H, W) -> uint8 RGB (H, W, 3).
        kwargs: default keyword arguments of ``fn``.
        micro_bins: number M of micro-bins per time bin (>= 2 enables the bw_deblur loss).
        channels_per_micro_bin: channels P per micro-bin (default cin // micro_bins).
        signed: whether values may be negative (uint8 storage is then refused).

    Raises:
        ConfigError: ``cin`` is not a multiple of ``micro_bins``.
    """
    if cin <= 0 or micro_bins <= 0 or cin % micro_bins:
        message = f"preprocessing {name!r}: cin={cin} must be a positive multiple of micro_bins={micro_bins}"
        raise ConfigError(message)
    PREPROCESSING_DICT[name] = {
        "cin": int(cin),
        "fn": fn,
        "kwargs": dict(kwargs or {}),
        "viz": viz,
        "micro_bins": int(micro_bins),
        "channels_per_micro_bin": int(channels_per_micro_bin or cin // micro_bins),
        "signed": bool(signed),
    }


register_new_preprocessing("histo", 2, histo, viz_histo, {"max_incr_per_pixel": 5})
register_new_preprocessing("diff", 1, diff, viz_diff, {"max_incr_per_pixel": 5}, signed=True)
register_new_preprocessing("timesurface", 2, timesurface, viz_timesurface, {"normed": True})
register_new_preprocessing(
    "multi_channel_timesurface",
    6,
    multi_channel_timesurface,
    viz_timesurface,
    {"normed": True},
    micro_bins=3,
    channels_per_micro_bin=2,
)
register_new_preprocessing(
    "event_cube",
    6,
    event_cube,
    viz_event_cube,
    {"split_polarity": True, "max_incr_per_pixel": 5},
    micro_bins=3,
    channels_per_micro_bin=2,
)
register_new_preprocessing(
    "event_cube_paper",
    10,
    event_cube_paper,
    viz_event_cube,
    {"max_incr_per_pixel": 63.75},
    micro_bins=5,
    channels_per_micro_bin=2,
)


def get_preprocess_info(name: str, preprocess_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The registry entry of ``name`` adjusted to ``preprocess_kwargs`` (merged kwargs, cin, P and signed).

    ``event_cube`` with ``split_polarity=False`` has M channels (P = 1) and is signed.

    Raises:
        ConfigError: unknown name or unknown keyword arguments.
    """
    if name not in PREPROCESSING_DICT:
        message = f"unknown preprocessing {name!r}; choices: {sorted(PREPROCESSING_DICT)}"
        raise ConfigError(message)
    entry = dict(PREPROCESSING_DICT[name])
    merged = {**entry["kwargs"], **dict(preprocess_kwargs or {})}
    unknown = set(merged) - set(entry["kwargs"])
    if unknown:
        message = f"preprocessing {name!r} takes {sorted(entry['kwargs'])}, not {sorted(unknown)}"
        raise ConfigError(message)
    entry["kwargs"] = merged
    if entry["fn"] is event_cube and not merged.get("split_polarity", True):
        entry["cin"] = entry["micro_bins"]
        entry["channels_per_micro_bin"] = 1
        entry["signed"] = True
        entry["viz"] = viz_signed_cube
    return entry


def get_cin(name: str, preprocess_kwargs: Mapping[str, Any] | None = None) -> int:
    """Number of channels per bin of a preprocessing with these kwargs."""
    return int(get_preprocess_info(name, preprocess_kwargs)["cin"])


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


def __getattr__(name: str) -> Any:
    # The torch twin is imported on first use, so that the NumPy side never pays torch's import time.
    if name == "events_to_tensor_torch":
        from opsin.eventflow._features_torch import events_to_tensor_torch

        return events_to_tensor_torch
    message = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(message)


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
