"""Turning accepted edges into the sharpness report: per-direction statistics, channel means, MTF curves, GeoJSON."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from opsin.iq.metrics._edge_values import EdgeResult
from opsin.iq.metrics._edges import DIRECTIONS
from opsin.iq.metrics._patch_selection import EdgePatch

__all__ = ["MTF_GRID", "combine_channels", "direction_stats", "mtf_on_grid", "write_edges_geojson"]

#: Frequencies (cycles/px) on which MTF curves are reported.
MTF_GRID = np.round(np.arange(0.0, 1.0 + 1e-9, 0.02), 2)


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    q75, q25 = np.percentile(arr, [75, 25])
    return {
        "mean": float(np.mean(arr)),
        "std": float(np.std(arr)),
        "length": len(values),
        "median": float(np.median(arr)),
        "IQR": float(q75 - q25),
    }


def direction_stats(results: dict[str, list[EdgeResult]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{metric: {direction: {"mean", "std", "length", "median", "IQR"}}}``; directions without a value are absent."""
    entry: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        per_direction = {}
        for direction in DIRECTIONS:
            values = [v for r in results[direction] if (v := r.value(metric)) is not None and np.isfinite(v)]
            if values:
                per_direction[direction] = _summary(values)
        entry[metric] = per_direction
    return entry


def combine_channels(report: dict[str, Any], metrics: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per ``<METRIC>_<direction>``: one channel's (mean, std), or the channels' nanmean and combined error.

    The error of several channels is ``max(sqrt(sum std^2) / n, nanstd(means))``.
    """
    channels = [k for k in report if k.startswith("channel ")]
    combined: dict[str, tuple[float, float]] = {}
    for metric in metrics:
        for direction in DIRECTIONS:
            pairs = [
                (report[c][metric][direction]["mean"], report[c][metric][direction]["std"])
                for c in channels
                if direction in report[c][metric]
            ]
            if not pairs:
                continue
            key = f"{metric}_{direction}"
            if len(pairs) == 1:
                combined[key] = (float(pairs[0][0]), float(pairs[0][1]))
                continue
            means = np.array([p[0] for p in pairs])
            stds = np.array([p[1] for p in pairs])
            error = max(math.sqrt(float(np.nansum(stds**2))) / len(pairs), float(np.nanstd(means)))
            combined[key] = (float(np.nanmean(means)), error)
    return combined


def mtf_on_grid(result: EdgeResult) -> tuple[np.ndarray, np.ndarray] | None:
    """The edge's MTF curve interpolated on :data:`MTF_GRID` (None when it kept no curve)."""
    if result.mtf_curve is None:
        return None
    freqs, mtf = result.mtf_curve
    return MTF_GRID, np.interp(MTF_GRID, freqs, mtf)


def write_edges_geojson(path: str, edges: list[tuple[int, EdgePatch, EdgeResult]]) -> None:
    """Write accepted edges ``(channel, patch, result)`` as a GeoJSON FeatureCollection of line strings."""
    features = []
    for channel, chosen, result in edges:
        piece = chosen.piece
        properties: dict[str, Any] = {"direction": chosen.direction, "channel": channel}
        for metric in ("RER", "FWHM", "MTF_NYQ", "MTF_halfNYQ"):
            if (value := result.value(metric)) is not None:
                properties[metric] = value
        features.append(
            {
                "type": "Feature",
                "properties": properties,
                "geometry": {"type": "LineString", "coordinates": [[piece.x0, piece.y0], [piece.x1, piece.y1]]},
            }
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"type": "FeatureCollection", "features": features}, fh)
