"""Label videos of one VisionFit video job (boxes, skeleton, cuboids, 3D keypoints, masks, rep count) and their grid.

Frames are joined to annotations the way the labels define it: ``annotation.image_id`` -> ``images[].id`` ->
``images[].frame_number`` (the ids are *not* frame indices in the real data). One output frame per labelled frame.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from opsin.synth.common.vis.videos import create_grid_of_videos, parse_video_frames, video_fps, write_video

__all__ = ["ARMATURE_PARENTS", "LABEL_VIDEO_NAMES", "render_label_videos"]

LABEL_VIDEO_NAMES = ("bounding_box", "skeleton", "cuboids", "3D_keypoints", "segmentation", "timeseries")

_BODY_PARENTS = {
    "left_hip": "pelvis",
    "right_hip": "pelvis",
    "spine1": "pelvis",
    "left_knee": "left_hip",
    "right_knee": "right_hip",
    "spine2": "spine1",
    "left_ankle": "left_knee",
    "right_ankle": "right_knee",
    "spine3": "spine2",
    "left_foot": "left_ankle",
    "right_foot": "right_ankle",
    "neck": "spine3",
    "left_collar": "spine3",
    "right_collar": "spine3",
    "head": "neck",
    "left_shoulder": "left_collar",
    "right_shoulder": "right_collar",
    "left_elbow": "left_shoulder",
    "right_elbow": "right_shoulder",
    "left_wrist": "left_elbow",
    "right_wrist": "right_elbow",
    "jaw": "head",
    "left_eye_smplhf": "head",
    "right_eye_smplhf": "head",
}


def _finger_parents() -> dict[str, str]:
    out = {}
    for side in ("left", "right"):
        for finger in ("index", "middle", "pinky", "ring", "thumb"):
            out[f"{side}_{finger}1"] = f"{side}_wrist"
            out[f"{side}_{finger}2"] = f"{side}_{finger}1"
            out[f"{side}_{finger}3"] = f"{side}_{finger}2"
    return out


ARMATURE_PARENTS: Mapping[str, str] = {**_BODY_PARENTS, **_finger_parents()}
"""Child joint -> parent joint of the 55-joint armature (``pelvis`` is the root)."""

_CUBOID_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))
_ISEG = re.compile(r"^image\.(\d+)\.iseg\.png$")
_GREEN = (40, 220, 60)
_RED = (230, 50, 50)
_YELLOW = (250, 220, 40)
_CYAN = (40, 200, 230)
_WHITE = (255, 255, 255)


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x), round(y)


def _draw_boxes(frame: np.ndarray, annotations: Sequence[Mapping[str, Any]], names: Mapping[Any, str]) -> None:
    for ann in annotations:
        bbox = ann.get("bbox")
        if not bbox or len(bbox) != 4:
            continue
        x, y, w, h = (float(v) for v in bbox)
        cv2.rectangle(frame, _pt(x, y), _pt(x + w, y + h), _GREEN, 1)
        label = str(ann.get("action") or names.get(ann.get("category_id"), "object"))
        cv2.putText(frame, label, _pt(x, max(10.0, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, _GREEN, 1, cv2.LINE_AA)


def _draw_skeleton(frame: np.ndarray, annotations: Sequence[Mapping[str, Any]]) -> None:
    for ann in annotations:
        joints = ann.get("armature_keypoints") or {}
        for child, parent in ARMATURE_PARENTS.items():
            a, b = joints.get(child), joints.get(parent)
            if a and b:
                cv2.line(frame, _pt(b["x"], b["y"]), _pt(a["x"], a["y"]), _CYAN, 1, cv2.LINE_AA)
        for joint in joints.values():
            colour = _GREEN if joint.get("v", 0) == 2 else _RED
            cv2.circle(frame, _pt(joint["x"], joint["y"]), 2, colour, -1)


def _draw_cuboids(frame: np.ndarray, annotations: Sequence[Mapping[str, Any]]) -> None:
    for ann in annotations:
        corners = ann.get("cuboid_coordinates") or []
        if len(corners) != 8:
            continue
        for i, j in _CUBOID_EDGES:
            colour = _YELLOW if i < 4 and j < 4 else _GREEN
            cv2.line(frame, _pt(corners[i]["x"], corners[i]["y"]), _pt(corners[j]["x"], corners[j]["y"]), colour, 1)


def _project_3d(points: np.ndarray, azimuth_deg: float = 35.0, elevation_deg: float = 20.0) -> np.ndarray:
    """Orthographic view of world points (z up): returns ``(u, v)`` with v growing upwards."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    u = np.cos(az) * x - np.sin(az) * y
    depth = np.sin(az) * x + np.cos(az) * y
    v = z * np.cos(el) - depth * np.sin(el)
    return np.stack([u, v], axis=1)


class _View3D:
    """Fixed orthographic view fitted to every global joint of the job, so the body moves in a stable frame."""

    def __init__(self, all_points: np.ndarray, width: int, height: int) -> None:
        projected = _project_3d(all_points) if len(all_points) else np.zeros((1, 2))
        low, high = projected.min(axis=0), projected.max(axis=0)
        span = np.maximum(high - low, 1e-6)
        self.scale = 0.85 * min(width / span[0], height / span[1])
        self.centre = (low + high) / 2
        self.width, self.height = width, height

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        uv = (_project_3d(points) - self.centre) * self.scale
        return np.stack([self.width / 2 + uv[:, 0], self.height / 2 - uv[:, 1]], axis=1)


def _globals(ann: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, joint in (ann.get("armature_keypoints") or {}).items():
        if all(k in joint for k in ("x_global", "y_global", "z_global")):
            out[name] = np.array([joint["x_global"], joint["y_global"], joint["z_global"]], dtype=float)
    return out


def _draw_3d(frame: np.ndarray, annotations: Sequence[Mapping[str, Any]], view: _View3D) -> None:
    frame[:] = 24
    for ann in annotations:
        joints = _globals(ann)
        if not joints:
            continue
        names = list(joints)
        pixels = dict(zip(names, view.to_pixels(np.stack([joints[n] for n in names]))))
        for child, parent in ARMATURE_PARENTS.items():
            if child in pixels and parent in pixels:
                cv2.line(frame, _pt(*pixels[parent]), _pt(*pixels[child]), _CYAN, 1, cv2.LINE_AA)
        for point in pixels.values():
            cv2.circle(frame, _pt(*point), 2, _YELLOW, -1)
    cv2.putText(frame, "3D (world)", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, _WHITE, 1, cv2.LINE_AA)


def _instance_masks(segmentation_zip: Path) -> dict[int, bytes]:
    masks: dict[int, bytes] = {}
    if not segmentation_zip.is_file():
        return masks
    with zipfile.ZipFile(segmentation_zip) as archive:
        for name in sorted(archive.namelist()):
            match = _ISEG.match(Path(name).name)
            if match:
                masks[int(match.group(1))] = archive.read(name)
    return masks


def _draw_mask(frame: np.ndarray, png: bytes | None) -> None:
    if png is None:
        return
    mask = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if mask is None:
        return
    mask = cv2.cvtColor(mask, cv2.COLOR_BGR2RGB)
    if mask.shape[:2] != frame.shape[:2]:
        mask = cv2.resize(mask, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
    covered = mask.any(axis=2)
    frame[covered] = (0.45 * frame[covered] + 0.55 * mask[covered]).astype(np.uint8)


def _draw_timeseries(frame: np.ndarray, values: Sequence[float], index: int) -> None:
    height, width = frame.shape[:2]
    frame[:] = 250
    margin = 16
    top, bottom = float(max(values) if values else 1.0), 0.0
    span = max(top - bottom, 1e-6)
    count = max(1, len(values) - 1)

    def xy(i: int, value: float) -> tuple[int, int]:
        return _pt(margin + (width - 2 * margin) * i / count, height - margin - (height - 2 * margin) * value / span)

    points = np.array([xy(i, v) for i, v in enumerate(values)], dtype=np.int32)
    cv2.polylines(frame, [points], False, (150, 150, 150), 1, cv2.LINE_AA)
    cv2.polylines(frame, [points[: index + 1]], False, (30, 90, 200), 2, cv2.LINE_AA)
    cv2.circle(frame, xy(index, values[index]), 3, _RED, -1)
    text = f"reps {values[index]:.2f}"
    cv2.putText(frame, text, (margin, margin), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)


def _frame_rate(job_folder: Path, video: Path) -> float:
    job_file = job_folder / "job.json"
    if job_file.is_file():
        params = json.loads(job_file.read_text(encoding="utf-8")).get("params", {})
        if params.get("frame_rate"):
            return float(params["frame_rate"])
    return video_fps(video)


def render_label_videos(job_folder: Path) -> str:
    """Write the six label videos and ``all_labels.mp4`` under ``<job>/output/``; return the grid's path."""
    video = job_folder / "video.mp4"
    labels_file = job_folder / "labels.json"
    if not video.is_file():
        msg = f"{job_folder} has no video.mp4 (a preview job or a job without results)"
        raise FileNotFoundError(msg)
    if not labels_file.is_file():
        msg = f"{job_folder} has no labels.json"
        raise FileNotFoundError(msg)
    labels = json.loads(labels_file.read_text(encoding="utf-8"))
    frames = parse_video_frames(video)
    if not frames:
        msg = f"{video}: no frames could be read"
        raise ValueError(msg)
    fps = _frame_rate(job_folder, video)
    images = sorted(labels.get("images") or [], key=lambda im: int(im.get("frame_number", 0)))
    frame_of_image = {im["id"]: int(im.get("frame_number", 0)) for im in images}
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for ann in labels.get("annotations") or []:
        frame_number = frame_of_image.get(ann.get("image_id"))
        if frame_number is not None:
            by_frame.setdefault(frame_number, []).append(ann)
    names = {c.get("id"): str(c.get("name", "object")) for c in labels.get("categories") or []}
    height, width = frames[0].shape[:2]
    all_globals = [p for anns in by_frame.values() for ann in anns for p in _globals(ann).values()]
    view = _View3D(np.array(all_globals) if all_globals else np.zeros((0, 3)), width, height)
    masks = _instance_masks(job_folder / "segmentation.zip")
    reps = [float(im.get("rep_count_from_start", 0.0) or 0.0) for im in images]
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in LABEL_VIDEO_NAMES}
    for index, image in enumerate(images):
        number = int(image.get("frame_number", 0))
        base = frames[min(number, len(frames) - 1)]
        anns = by_frame.get(number, [])
        layers = {name: base.copy() for name in LABEL_VIDEO_NAMES}
        _draw_boxes(layers["bounding_box"], anns, names)
        _draw_skeleton(layers["skeleton"], anns)
        _draw_cuboids(layers["cuboids"], anns)
        _draw_3d(layers["3D_keypoints"], anns, view)
        _draw_mask(layers["segmentation"], masks.get(number))
        _draw_timeseries(layers["timeseries"], reps, index)
        for name in LABEL_VIDEO_NAMES:
            outputs[name].append(layers[name])
    out_dir = job_folder / "output"
    paths = [write_video(outputs[name], out_dir / f"{name}.mp4", fps) for name in LABEL_VIDEO_NAMES]
    return create_grid_of_videos(paths, out_dir / "all_labels.mp4", num_cols=3, fps=fps)
