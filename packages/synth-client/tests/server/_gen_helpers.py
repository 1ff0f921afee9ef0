"""Helpers of the generator tests: render jobs into folders and read job folders (ours and the real fixture) alike."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# the real-data layer: OPSIN_FIXTURES, else <repo>/../shared/fixtures (this file is in <repo>/packages/...)
FIXTURES = Path(os.environ.get("OPSIN_FIXTURES") or Path(__file__).resolve().parents[5] / "shared" / "fixtures")
SAMPLE_BATCH = FIXTURES / "visionfit-v0.4.0-sample"
SAMPLE_JOB = SAMPLE_BATCH / "1b3f73c9-0e95-46f7-93c3-ce0ae516b413"

# a small, fast VisionFit job: (0.5 + 1.4) s x 8 fps = 15 frames of 160 x 128 with furniture, wall art and noise
SMALL_VISIONFIT = {
    "scene": "LIVINGROOM_1",
    "exercise": "UPPERCUT-LEFT",
    "num_reps": 1,
    "frame_rate": 8,
    "image_width": 160,
    "image_height": 128,
    "camera_distance": 3.2,
    "camera_height": 1.1,
    "lighting_power": 400.0,
    "add_wall_art": True,
    "enable_sensor_noise": True,
    "kinematic_noise_factor": 1.5,
}


class SetAfter:
    """A cancel flag that reports ``True`` from its ``n``-th ``is_set()`` call on."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > self.n


def render(generator: Any, out_dir: Path, seed: int, *, is_preview: bool = False, **overrides: Any) -> tuple[dict, int]:
    """Run ``generator`` with its defaults plus ``overrides`` into a fresh ``out_dir``; return (params, frames)."""
    params = {**generator.defaults(), **overrides}
    out_dir.mkdir(parents=True, exist_ok=False)
    frames = generator.run(params, is_preview, seed, out_dir, None)
    return params, frames


def read_job(folder: Path) -> dict[str, Any]:
    """Read a VisionFit job folder the way a user of the results would (same code for ours and the fixture)."""
    job: dict[str, Any] = {"files": sorted(p.name for p in folder.iterdir())}
    job["job"] = json.loads((folder / "job.json").read_text())
    job["timing"] = json.loads((folder / "timing.json").read_text())
    if (folder / "labels.json").exists():
        job["labels"] = json.loads((folder / "labels.json").read_text())
    if (folder / "segmentation.zip").exists():
        with zipfile.ZipFile(folder / "segmentation.zip") as zf:
            job["segmentation"] = sorted(zf.namelist())
    return job


def read_mask(folder: Path, name: str) -> np.ndarray:
    """One mask of ``segmentation.zip`` as a boolean array (any non-black pixel)."""
    import cv2

    with zipfile.ZipFile(folder / "segmentation.zip") as zf:
        data = zf.read(name)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.ndim == 3, f"{name}: expected an RGB PNG, got {img.shape}"
    assert img.shape[2] == 3, f"{name}: expected an RGB PNG, got {img.shape}"
    return np.asarray(img.max(axis=2) > 0)


def key_tree(value: Any) -> Any:
    """The nested key structure of a JSON value: dicts map keys to subtrees, lists merge their items' trees."""
    if isinstance(value, dict):
        return {k: key_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        found = False
        for item in value:
            sub = key_tree(item)
            if isinstance(sub, dict):
                found = True
                for k, v in sub.items():
                    merged.setdefault(k, v)
        return merged if found else None
    return None


def flatten_keys(tree: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every key of a :func:`key_tree`."""
    out: set[str] = set()
    if isinstance(tree, dict):
        for k, v in tree.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            out |= flatten_keys(v, path)
    return out


def segmentation_patterns(names: list[str]) -> set[str]:
    """Mask names with frame numbers and annotation ids replaced by placeholders."""
    out = set()
    for name in names:
        m = re.fullmatch(r"image\.(\d{6})\.(.+)\.png", name)
        assert m, f"unexpected member {name}"
        rest = re.sub(r"^iseg\.\d{6}$", "iseg.AAAAAA", m.group(2))
        out.add(f"image.NNNNNN.{rest}.png")
    return out
