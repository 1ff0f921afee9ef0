"""Determinism of the VisionFit generators: same params + seed = same bytes; preview = frame 0; streams stay apart."""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gen_helpers import SetAfter, render

pytest.importorskip("cv2", reason="the generators need the [server] extra")

import itertools

from opsin.synth.errors import JobCancelledError
from opsin.synth.server.generators import get_generator

PARAMS = {"exercise": "SQUAT-GOBLET+SUMO-DUMBBELL", "num_reps": 2, "inter_rep_delay_avg": 0.3,
          "inter_rep_delay_var": 0.8, "max_rel_speed_change": 0.3, "rel_baseline_speed": 2.5, "frame_rate": 6,
          "image_width": 128, "image_height": 128, "enable_sensor_noise": True, "outfit": -1,
          "allowable_occlusion": 30.0, "add_pauses": True, "randomize_skin_tone": True}  # fmt: skip
GEN = "visionfit-flagship-v0.1.0"


def _zip_members(folder: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(folder / "segmentation.zip") as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _labels(folder: Path) -> dict[str, Any]:
    labels = json.loads((folder / "labels.json").read_text())
    labels["info"].pop("date_created")
    return labels


def _globals(labels: dict[str, Any]) -> np.ndarray:
    return np.array([[[e["x_global"], e["y_global"], e["z_global"]] for e in a["armature_keypoints"].values()]
                     for a in labels["annotations"]])  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("determinism")
    g = get_generator(GEN)
    out = {}
    variants = {
        "a": (5, False, {}),
        "b": (5, False, {}),
        "preview": (5, True, {}),
        "seed": (6, False, {}),
        "light": (5, False, {"lighting_power": 900.0, "enable_sensor_noise": False}),
        "outfit": (5, False, {"outfit": 2, "avatar_identity": 17, "scene": "GYM_1"}),
    }
    for name, (seed, preview, extra) in variants.items():
        render(g, base / name, seed, is_preview=preview, **{**PARAMS, **extra})
        out[name] = base / name
    return out


def test_same_params_and_seed_give_identical_bytes(runs: dict[str, Path]) -> None:
    a, b = runs["a"], runs["b"]
    assert (a / "video_preview.png").read_bytes() == (b / "video_preview.png").read_bytes()
    assert (a / "segmentation.zip").read_bytes() == (b / "segmentation.zip").read_bytes()
    assert (a / "job.json").read_bytes() == (b / "job.json").read_bytes()
    assert _labels(a) == _labels(b)
    assert (a / "labels.json").read_text() != ""  # date_created is the only difference allowed


def test_preview_is_frame_zero(runs: dict[str, Path]) -> None:
    import cv2

    video, preview = runs["a"], runs["preview"]
    assert sorted(p.name for p in preview.iterdir()) == [
        "job.json", "labels.json", "segmentation.zip", "timing.json", "video_preview.png"
    ]  # fmt: skip
    assert (preview / "video_preview.png").read_bytes() == (video / "video_preview.png").read_bytes()
    frame0 = {k: v for k, v in _zip_members(video).items() if k.startswith("image.000000.")}
    assert _zip_members(preview) == frame0
    assert len(frame0) == 5
    lv, lp = _labels(video), _labels(preview)
    assert lp["images"] == lv["images"][:1]
    assert lp["annotations"] == lv["annotations"][:1]
    assert lp["info"]["camera_P_matrix"] == lv["info"]["camera_P_matrix"]
    assert json.loads((preview / "timing.json").read_text())["num_frames"] == 1
    # the video's first frame is the preview (mp4v is lossy: compare loosely)
    cap = cv2.VideoCapture(str(video / "video.mp4"))
    ok, first = cap.read()
    count = 1 if ok else 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert ok
    assert count == len(lv["images"])
    png = cv2.imread(str(video / "video_preview.png"))
    assert first.shape == png.shape == (128, 128, 3)
    assert np.abs(first.astype(int) - png.astype(int)).mean() < 6


def test_different_seeds_differ(runs: dict[str, Path]) -> None:
    a, c = runs["a"], runs["seed"]
    assert (a / "video_preview.png").read_bytes() != (c / "video_preview.png").read_bytes()
    la, lc = _labels(a), _labels(c)
    assert la["info"]["avatar_yaw"] != lc["info"]["avatar_yaw"]
    assert len(la["images"]) == len(lc["images"]), "the frame count does not depend on the seed"


def test_overrides_do_not_reshuffle_other_aspects(runs: dict[str, Path]) -> None:
    base, light, outfit = (_labels(runs[k]) for k in ("a", "light", "outfit"))
    # lighting and noise change only the pixels: pose, camera, masks and keypoints stay
    assert (runs["a"] / "video_preview.png").read_bytes() != (runs["light"] / "video_preview.png").read_bytes()
    assert light["info"]["camera_P_matrix"] == base["info"]["camera_P_matrix"]
    assert [a["keypoints"] for a in light["annotations"]] == [a["keypoints"] for a in base["annotations"]]
    assert _zip_members(runs["light"]) == _zip_members(runs["a"])
    assert light["images"][0]["metrics"]["snr"] is None
    assert base["images"][0]["metrics"]["snr"] is not None
    # outfit, identity and scene change appearance and room, not the motion or the placement
    assert outfit["info"]["avatar_attire_top"] != base["info"]["avatar_attire_top"] or (
        outfit["info"]["avatar_attire_bottom"] != base["info"]["avatar_attire_bottom"]
    )
    assert outfit["info"]["avatar_yaw"] == base["info"]["avatar_yaw"]
    np.testing.assert_allclose(_globals(outfit), _globals(base), atol=1e-6)
    assert [i["rep_count_from_start"] for i in outfit["images"]] == [i["rep_count_from_start"] for i in base["images"]]
    assert outfit["info"]["avatar_betas"][2:] == base["info"]["avatar_betas"][2:]


def test_pauses_hold_the_rep_count(runs: dict[str, Path]) -> None:
    counts = [img["rep_count_from_start"] for img in _labels(runs["a"])["images"]]
    assert counts[0] == 0.0
    assert counts[-1] <= 2.0
    flats = sum(1 for x, y in itertools.pairwise(counts) if x == y and 0 < x < 2)
    assert flats >= 2, "add_pauses holds each rep at its intermediate pose, and pauses separate reps"
    assert any(abs(c - 0.5) < 1e-6 for c in counts), "the hold sits at the intermediate phase (0.5 for squats)"


@pytest.mark.parametrize("name", ["visionfit-v0.4.0", "shapes-v0.1.0", "test-generator-v0.1.0"])
def test_cancel_stops_between_frames(name: str, tmp_path: Path) -> None:
    g = get_generator(name)
    params = {**g.defaults(), **({"image_width": 128, "image_height": 128, "num_reps": 2} if "vision" in name else {})}
    if name == "test-generator-v0.1.0":
        params["param1"] = 5
    flag = SetAfter(2)
    (tmp_path / "a").mkdir()
    with pytest.raises(JobCancelledError, match="cancelled after 2 frame"):
        g.run(params, False, 1, tmp_path / "a", flag)
    assert flag.calls == 3
    event = threading.Event()
    event.set()
    (tmp_path / "b").mkdir()
    with pytest.raises(JobCancelledError, match=name):
        g.run(params, False, 1, tmp_path / "b", event)
