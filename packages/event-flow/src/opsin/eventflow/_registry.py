"""The registry of feature builders: ``PREPROCESSING_DICT`` and ``register_new_preprocessing``, with their viz.

``PREPROCESSING_DICT[name]`` holds ``cin`` (channels with default kwargs), ``fn``, ``kwargs`` (defaults), ``viz``
(feature of one bin (C, H, W) -> uint8 RGB), ``micro_bins`` M, ``channels_per_micro_bin`` P and ``signed``. It lives
apart from :mod:`opsin.eventflow.preprocessing` so that the torch twin can read it without importing the public
module that re-exports the twin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from opsin.eventflow._features import diff, event_cube, event_cube_paper, histo, multi_channel_timesurface, timesurface
from opsin.eventflow.errors import ConfigError

__all__ = [
    "PREPROCESSING_DICT",
    "get_cin",
    "get_preprocess_info",
    "register_new_preprocessing",
    "viz_diff",
    "viz_event_cube",
    "viz_histo",
    "viz_signed_cube",
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
