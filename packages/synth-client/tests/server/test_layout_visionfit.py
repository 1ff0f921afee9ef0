"""Layout: a rendered VisionFit job and the real fixture job are read by the same reader and look the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _gen_helpers import SAMPLE_JOB, SMALL_VISIONFIT, flatten_keys, key_tree, read_job, render, segmentation_patterns

pytest.importorskip("cv2", reason="the generators need the [server] extra")

from opsin.synth.server.generators import get_generator

# not produced by our generator: equipment instances, person_idx, action (absent from the fixture too) and timing keys
# beyond frame_render, frame_annotate, frame_render_misc, image_metrics, num_frames.
NOT_PRODUCED_TIMING_PREFIXES = ("exercise_apply", "dry_run", "clothsim-")
# our additions to info
EXTRA_INFO_KEYS = {"info.generator", "info.seed_job_id"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("layout") / "job"
    params, _ = render(get_generator("visionfit-v0.4.0"), folder, seed=11, **SMALL_VISIONFIT)
    return folder, params


@pytest.fixture(scope="module")
def fixture_job() -> dict[str, Any]:
    if not SAMPLE_JOB.exists():
        pytest.skip(f"real fixture job not found at {SAMPLE_JOB} (set OPSIN_FIXTURES to the fixtures folder)")
    return read_job(SAMPLE_JOB)


def test_same_file_names(rendered: tuple[Path, dict[str, Any]], fixture_job: dict[str, Any]) -> None:
    ours = read_job(rendered[0])
    assert ours["files"] == fixture_job["files"]
    assert ours["files"] == sorted(
        ["job.json", "labels.json", "segmentation.zip", "timing.json", "video.mp4", "video_preview.png"]
    )


def test_same_label_keys_at_every_level(rendered: tuple[Path, dict[str, Any]], fixture_job: dict[str, Any]) -> None:
    ours = flatten_keys(key_tree(read_job(rendered[0])["labels"]))
    theirs = flatten_keys(key_tree(fixture_job["labels"]))
    assert theirs - ours == set(), "fields of the real labels missing from ours"
    assert ours - theirs == EXTRA_INFO_KEYS
    # spot checks on the deep levels
    assert {"annotations.armature_keypoints.right_thumb3.z_global", "annotations.vertex_keypoints.nose_tip.v",
            "annotations.cuboid_coordinates.x", "images.metrics.snr"} <= ours  # fmt: skip


def test_same_job_json_and_timing_keys(rendered: tuple[Path, dict[str, Any]], fixture_job: dict[str, Any]) -> None:
    ours = read_job(rendered[0])
    assert list(ours["job"]) == ["name", "params"] == list(fixture_job["job"])
    assert list(ours["job"]["params"]) == list(fixture_job["job"]["params"])  # the 28 params, same order
    assert (rendered[0] / "job.json").read_text().startswith('{\n    "name": "visionfit-v0.4.0",\n    "params"')
    expected = {k for k in fixture_job["timing"] if not k.startswith(NOT_PRODUCED_TIMING_PREFIXES)}
    assert set(ours["timing"]) == expected == {"frame_render", "frame_annotate", "frame_render_misc",
                                               "image_metrics", "num_frames"}  # fmt: skip
    assert len(ours["timing"]["frame_render"]) == ours["timing"]["num_frames"]


def test_same_segmentation_members(rendered: tuple[Path, dict[str, Any]], fixture_job: dict[str, Any]) -> None:
    ours = read_job(rendered[0])
    assert segmentation_patterns(ours["segmentation"]) == segmentation_patterns(fixture_job["segmentation"])
    frames = len(ours["labels"]["images"])
    assert len(ours["segmentation"]) == 5 * frames
    ann_ids = {a["image_id"]: a["id"] for a in ours["labels"]["annotations"]}
    for image in ours["labels"]["images"]:
        n = image["frame_number"]
        assert f"image.{n:06d}.iseg.{ann_ids[image['id']]:06d}.png" in ours["segmentation"]


def test_value_types_match_fixture(rendered: tuple[Path, dict[str, Any]], fixture_job: dict[str, Any]) -> None:
    ours = read_job(rendered[0])["labels"]
    theirs = fixture_job["labels"]
    a, b = ours["annotations"][0], theirs["annotations"][0]
    for key in ("bbox", "keypoints", "segmentation", "cuboid_coordinates", "num_keypoints", "area", "color"):
        assert type(a[key]) is type(b[key]), key
    assert all(isinstance(v, int) for v in a["keypoints"])
    assert len(a["keypoints"]) == 51
    assert isinstance(a["armature_keypoints"]["pelvis"]["x"], int)
    assert len(a["armature_keypoints"]) == 55
    assert list(a["armature_keypoints"]) == list(b["armature_keypoints"])
    assert list(a["quaternions"]) == list(b["quaternions"])
    assert len(a["quaternions"]["root"]) == 4
    assert list(a["vertex_keypoints"]) == list(b["vertex_keypoints"])
    assert ours["categories"] == theirs["categories"]
    assert [img["id"] for img in ours["images"]] == [3 * img["frame_number"] for img in ours["images"]]
    assert len(ours["info"]["date_created"]) == 15
    assert ours["info"]["date_created"][8] == "_"
    assert ours["info"]["camera_K_matrix"][0][0] == pytest.approx(160 * 50 / 36)


def test_rendered_job_has_the_documented_layout(rendered: tuple[Path, dict[str, Any]]) -> None:
    """The layout rules themselves, checked on every clone (the tests above compare with the real sample)."""
    folder, params = rendered
    ours = read_job(folder)
    assert ours["files"] == ["job.json", "labels.json", "segmentation.zip", "timing.json", "video.mp4",
                             "video_preview.png"]  # fmt: skip
    assert (folder / "job.json").read_text().startswith('{\n    "name": "visionfit-v0.4.0",\n    "params"')
    assert ours["job"]["params"] == {**params, "state": None}
    assert len(ours["job"]["params"]) == 28
    assert set(ours["timing"]) == {"frame_render", "frame_annotate", "frame_render_misc", "image_metrics",
                                   "num_frames"}  # fmt: skip
    labels = ours["labels"]
    assert list(labels) == ["info", "categories", "images", "annotations"]
    frames = len(labels["images"])
    assert ours["timing"]["num_frames"] == frames
    assert segmentation_patterns(ours["segmentation"]) == {
        "image.NNNNNN.cseg.png", "image.NNNNNN.iseg.png", "image.NNNNNN.iseg.AAAAAA.png",
        "image.NNNNNN.cseg.CLOTHING_1.png", "image.NNNNNN.cseg.CLOTHING_2.png",
    }  # fmt: skip
    assert len(ours["segmentation"]) == 5 * frames
    (category,) = labels["categories"]
    assert (category["id"], category["name"], category["color"]) == (0, "person", [1.0, 1.0, 1.0])
    assert len(category["keypoints"]) == 17
    assert len(category["skeleton"]) == 19
    keys = flatten_keys(key_tree(labels))
    assert {"info.camera_K_matrix", "info.camera_RT_matrix", "info.camera_P_matrix", "info.avatar_betas",
            "images.rep_count_from_intermediate", "images.metrics.snr", "annotations.percent_occlusion",
            "annotations.armature_keypoints.pelvis.x_global", "annotations.vertex_keypoints.nose_tip.z",
            "annotations.cuboid_coordinates.z", "annotations.quaternions.root"} <= keys  # fmt: skip
    annotation = labels["annotations"][0]
    assert len(annotation["armature_keypoints"]) == 55
    assert len(annotation["quaternions"]) == 56
    assert len(annotation["cuboid_coordinates"]) == 8
    _x, _y, w, h = annotation["bbox"]
    assert annotation["area"] == pytest.approx(w * h)  # the bbox's area, not the mask's
    assert [img["id"] for img in labels["images"]] == [3 * img["frame_number"] for img in labels["images"]]
