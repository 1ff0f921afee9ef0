"""Geometry: every label of a rendered VisionFit job agrees with the camera matrices and the masks."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from _gen_helpers import SMALL_VISIONFIT, read_mask, render

pytest.importorskip("cv2", reason="the generators need the [server] extra")

from opsin.synth.server.generators import get_generator

mask_utils = pytest.importorskip("pycocotools.mask", reason="polygons are rasterised with pycocotools")
# pycocotools' mask decoding trips a NumPy 2 deprecation warning that is not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# COCO keypoint -> the armature joint or vertex keypoint it is taken from (our choice: the original leaves it open)
COCO_SOURCE = {"nose": ("vertex_keypoints", "nose_tip"), "left_eye": ("armature_keypoints", "left_eye_smplhf"),
               "right_eye": ("armature_keypoints", "right_eye_smplhf"), "left_ear": ("vertex_keypoints", "left_ear"),
               "right_ear": ("vertex_keypoints", "right_ear")}  # fmt: skip

CASES = {
    "standing-front": ("visionfit-v0.4.0", SMALL_VISIONFIT),
    "floor-side-occluders": (
        "visionfit-flagship-v0.1.0",
        {
            "scene": "BEDROOM_4",
            "exercise": "BURPEE_PUSHUP_03",
            "num_reps": 1,
            "frame_rate": 6,
            "image_width": 128,
            "image_height": 176,
            "camera_distance": 2.2,
            "camera_height": 0.4,
            "relative_avatar_angle_deg": 80.0,
            "relative_camera_yaw_deg": 12.0,
            "relative_camera_pitch_deg": -6.0,
            "allowable_occlusion": 40.0,
            "add_pauses": True,
            "outfit": 1,
            "gender": "FEMALE",
            "relative_height": 2.0,
        },
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    name, overrides = CASES[request.param]
    generator = get_generator(name)
    folder = tmp_path_factory.mktemp("geometry") / "job"
    params, frames = render(generator, folder, seed=1234, **overrides)
    labels = json.loads((folder / "labels.json").read_text())
    return {"folder": folder, "params": params, "frames": frames, "labels": labels, "generator": generator,
            "case": request.param}  # fmt: skip


def _project(p_matrix: np.ndarray, entry: dict[str, Any]) -> tuple[float, float, float]:
    x = p_matrix @ np.array([entry["x_global"], entry["y_global"], entry["z_global"], 1.0])
    return x[0] / x[2], x[1] / x[2], x[2]


def test_frame_counts_agree(job: dict[str, Any]) -> None:
    timing = json.loads((job["folder"] / "timing.json").read_text())
    estimate = job["generator"].estimate(job["params"], False)
    assert len(job["labels"]["images"]) == estimate == timing["num_frames"] == job["frames"]
    assert len(job["labels"]["annotations"]) == estimate
    assert [img["frame_number"] for img in job["labels"]["images"]] == list(range(estimate))


def test_video_has_every_frame_at_the_image_size(job: dict[str, Any]) -> None:
    import cv2

    cap = cv2.VideoCapture(str(job["folder"] / "video.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(job["params"]["frame_rate"])
    shapes = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        shapes.append(frame.shape)
    cap.release()
    h, w = job["params"]["image_height"], job["params"]["image_width"]
    assert shapes == [(h, w, 3)] * job["frames"]


def test_camera_matrices(job: dict[str, Any]) -> None:
    info = job["labels"]["info"]
    k, rt, p = (np.array(info[f"camera_{m}_matrix"]) for m in ("K", "RT", "P"))
    np.testing.assert_allclose(p, k @ rt, atol=1e-9)
    r, t = rt[:, :3], rt[:, 3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(-r.T @ t, info["camera_location"], atol=1e-5)
    w, h = job["params"]["image_width"], job["params"]["image_height"]
    assert k[0, 0] == k[1, 1] == pytest.approx(max(w, h) * 50 / 36)
    assert (k[0, 2], k[1, 2]) == (w / 2, h / 2)
    assert info["camera_height"] == pytest.approx(job["params"]["camera_height"], abs=1e-6)


def test_keypoints_are_projections_of_globals(job: dict[str, Any]) -> None:
    p = np.array(job["labels"]["info"]["camera_P_matrix"])
    names = job["labels"]["categories"][0]["keypoints"]
    for ann in job["labels"]["annotations"]:
        for group in ("armature_keypoints", "vertex_keypoints"):
            for name, entry in ann[group].items():
                u, v, depth = _project(p, entry)
                assert depth > 0
                assert abs(u - (entry["x"] + 0.5)) <= 1.0, (group, name)
                assert abs(v - (entry["y"] + 0.5)) <= 1.0, (group, name)
                assert entry["z"] == pytest.approx(depth, abs=1e-5)
        kps = ann["keypoints"]
        for i, name in enumerate(names):
            group, src = COCO_SOURCE.get(name, ("armature_keypoints", name))
            u, v, _ = _project(p, ann[group][src])
            assert abs(u - (kps[3 * i] + 0.5)) <= 1.0, name
            assert abs(v - (kps[3 * i + 1] + 0.5)) <= 1.0, name
            assert kps[3 * i + 2] == ann[group][src]["v"]
        assert ann["num_keypoints"] == sum(1 for i in range(17) if kps[3 * i + 2] > 0)


def test_visibility_flags(job: dict[str, Any]) -> None:
    w, h = job["params"]["image_width"], job["params"]["image_height"]
    flags = []
    for ann in job["labels"]["annotations"]:
        for entry in ann["armature_keypoints"].values():
            inside = 0 <= entry["x"] < w and 0 <= entry["y"] < h
            assert (entry["v"] == 0) == (not inside)
            flags.append(entry["v"])
    assert {1, 2} <= set(flags), "a moving body should show both visible and self-occluded joints"


def test_bbox_is_mask_extent_and_holds_visible_keypoints(job: dict[str, Any]) -> None:
    folder = job["folder"]
    frame_of = {img["id"]: img["frame_number"] for img in job["labels"]["images"]}
    for ann in job["labels"]["annotations"]:
        n = frame_of[ann["image_id"]]
        mask = read_mask(folder, f"image.{n:06d}.iseg.png")
        np.testing.assert_array_equal(mask, read_mask(folder, f"image.{n:06d}.cseg.png"))
        x, y, bw, bh = ann["bbox"]
        ys, xs = np.nonzero(mask)
        assert len(xs) > 0
        assert x == pytest.approx(xs.min() + 0.01, abs=1e-6)
        assert y == pytest.approx(ys.min() + 0.01, abs=1e-6)
        assert x + bw == pytest.approx(xs.max() + 0.99, abs=1e-6)
        assert y + bh == pytest.approx(ys.max() + 0.99, abs=1e-6)
        assert ann["area"] == pytest.approx(bw * bh, rel=1e-6)
        assert len(ann["segmentation"]) == 1, "one COCO polygon per annotation"
        verts = np.reshape(ann["segmentation"][0], (-1, 2))
        rle = mask_utils.frPyObjects(ann["segmentation"], mask.shape[0], mask.shape[1])
        drawn = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
        iou = (drawn & mask).sum() / (drawn | mask).sum()
        assert iou > 0.9, f"polygon and mask disagree (IoU {iou:.3f})"
        np.testing.assert_allclose([verts[:, 0].min(), verts[:, 1].min()], [x, y], atol=1e-6)
        kps = np.reshape(ann["keypoints"], (-1, 3))
        for kx, ky, kv in kps:
            if kv == 2:
                assert mask[ky, kx], "a visible keypoint lies on the person's visible mask"
                assert x - 1 <= kx + 0.5 <= x + bw + 1
                assert y - 1 <= ky + 0.5 <= y + bh + 1
        unoccluded = read_mask(folder, f"image.{n:06d}.iseg.{ann['id']:06d}.png")
        assert not (mask & ~unoccluded).any(), "the visible mask is part of the unoccluded one"
        hidden = 100.0 * (unoccluded.sum() - mask.sum()) / unoccluded.sum()
        assert ann["percent_occlusion"] == pytest.approx(hidden, abs=1e-4)
        assert ann["percent_occlusion"] <= job["params"]["allowable_occlusion"]
        for garment in ("CLOTHING_1", "CLOTHING_2"):
            g = read_mask(folder, f"image.{n:06d}.cseg.{garment}.png")
            assert not (g & ~mask).any()
            assert g.any()
    if job["case"] == "floor-side-occluders":  # this seed puts furniture in front of the avatar
        assert max(a["percent_occlusion"] for a in job["labels"]["annotations"]) > 1.0
    else:  # allowable_occlusion 0 keeps the avatar clear
        assert all(a["percent_occlusion"] == 0.0 for a in job["labels"]["annotations"])


def test_cuboid_encloses_joints(job: dict[str, Any]) -> None:
    info = job["labels"]["info"]
    k = np.array(info["camera_K_matrix"])
    rt = np.array(info["camera_RT_matrix"])
    r, t = rt[:, :3], rt[:, 3]
    for ann in job["labels"]["annotations"]:
        corners = []
        for c in ann["cuboid_coordinates"]:
            ray = np.linalg.inv(k) @ np.array([c["x"] + 0.5, c["y"] + 0.5, 1.0])
            corners.append(r.T @ (c["z"] * ray - t))
        corners = np.array(corners)
        tol = 0.03  # corner pixels are floored: 1 px at <= 6 m is < 3 cm
        lo, hi = corners.min(axis=0) - tol, corners.max(axis=0) + tol
        # top face (0-3) is at zmax, bottom face (4-7) at zmin; 0 = (xmin, ymax), 2 = (xmax, ymin)
        assert corners[:4, 2].min() > corners[4:, 2].max()
        assert corners[0, 0] < corners[2, 0]
        assert corners[0, 1] > corners[2, 1]
        joints = np.array([[e["x_global"], e["y_global"], e["z_global"]] for e in ann["armature_keypoints"].values()])
        assert np.all(joints >= lo)
        assert np.all(joints <= hi)
        assert joints[:, 2].min() >= -1e-6, "nothing below the floor"


def test_quaternions_and_rep_counts(job: dict[str, Any]) -> None:
    for ann in job["labels"]["annotations"]:
        q = np.array(list(ann["quaternions"].values()))
        assert q.shape == (56, 4)
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    counts = [img["rep_count_from_start"] for img in job["labels"]["images"]]
    assert counts[0] == 0.0
    assert all(b >= a for a, b in itertools.pairwise(counts))
    assert counts[-1] <= job["params"]["num_reps"]
    for img in job["labels"]["images"]:
        assert img["rep_count_from_intermediate"] - img["rep_count_from_start"] == pytest.approx(
            1 - (0.4186 if job["params"]["exercise"].startswith("UPPERCUT") else 0.5), abs=1e-6
        )
