"""shapes-v0.1.0: the job folder is a COCO dataset whose boxes, polygons, areas and sizes are consistent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gen_helpers import render

pytest.importorskip("cv2", reason="the generators need the [server] extra")
pytest.importorskip("pycocotools", reason="the shapes tests load annotations with pycocotools")

from pycocotools.coco import COCO

from opsin.synth.server.generators import get_generator
from opsin.synth.server.generators.shapes import polygon_area

# pycocotools' mask decoding trips a NumPy 2 deprecation warning that is not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    g = get_generator("shapes-v0.1.0")
    folder = tmp_path_factory.mktemp("shapes") / "job"
    overrides = {"num_images": 6, "image_width": 200, "image_height": 150, "classes": "TREE+CAR+BUILDING",
                 "num_objects": 12, "gsd_m": 0.4, "noise_std": 3.0, "blur_sigma": 0.7}  # fmt: skip
    params, frames = render(g, folder, seed=3, **overrides)
    return {"folder": folder, "params": params, "frames": frames, "coco": COCO(str(folder / "annotations.json"))}


def test_folder_is_a_coco_dataset(dataset: dict[str, Any]) -> None:
    import cv2

    folder, coco = dataset["folder"], dataset["coco"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "annotations.geojson", "annotations.json", "images", "job.json", "timing.json", "video_preview.png"
    ]  # fmt: skip
    assert dataset["frames"] == 6 == len(coco.imgs) == json.loads((folder / "timing.json").read_text())["num_frames"]
    for img in coco.imgs.values():
        pixels = cv2.imread(str(folder / "images" / img["file_name"]), cv2.IMREAD_UNCHANGED)
        assert pixels.shape == (img["height"], img["width"], 3) == (150, 200, 3)
    assert sorted(p.name for p in (folder / "images").iterdir()) == [f"{k:06d}.png" for k in range(6)]
    assert (folder / "video_preview.png").read_bytes() == (folder / "images" / "000000.png").read_bytes()
    names = {c["name"] for c in coco.cats.values()}
    assert {"car", "truck", "building", "tree", "pool"} == names
    used = {coco.cats[a["category_id"]]["name"] for a in coco.anns.values()}
    assert used <= {"car", "building", "tree"}
    assert len(coco.anns) >= 20


def test_boxes_polygons_and_areas_agree(dataset: dict[str, Any]) -> None:
    coco = dataset["coco"]
    for ann in coco.anns.values():
        assert ann["iscrowd"] == 0
        assert len(ann["segmentation"]) == 1
        poly = np.reshape(ann["segmentation"][0], (-1, 2))
        x, y, w, h = ann["bbox"]
        assert poly[:, 0].min() == pytest.approx(x, abs=1e-3)
        assert poly[:, 1].min() == pytest.approx(y, abs=1e-3)
        assert poly[:, 0].max() == pytest.approx(x + w, abs=2e-3)
        assert poly[:, 1].max() == pytest.approx(y + h, abs=2e-3)
        assert x >= 0
        assert y >= 0
        assert x + w <= 200 + 1e-6
        assert y + h <= 150 + 1e-6
        assert ann["area"] == pytest.approx(polygon_area(poly), rel=1e-6, abs=1e-3)
        mask = coco.annToMask(ann)
        assert abs(int(mask.sum()) - ann["area"]) <= 0.25 * ann["area"] + 2 * (w + h)


def test_geojson_matches_coco(dataset: dict[str, Any]) -> None:
    geo = json.loads((dataset["folder"] / "annotations.geojson").read_text())
    coco = dataset["coco"]
    assert geo["type"] == "FeatureCollection"
    assert len(geo["features"]) == len(coco.anns)
    files = {img["file_name"] for img in coco.imgs.values()}
    for feature, ann in zip(geo["features"], sorted(coco.anns.values(), key=lambda a: a["id"])):
        assert feature["properties"]["image_filename"] in files
        assert feature["properties"]["class_id"] == ann["category_id"]
        ring = np.array(feature["geometry"]["coordinates"][0])
        np.testing.assert_allclose(ring[0], ring[-1])
        np.testing.assert_allclose(ring[:-1].reshape(-1), ann["segmentation"][0], atol=1e-3)


@pytest.mark.parametrize("gsd", [0.25, 0.5])
def test_object_sizes_follow_the_gsd(gsd: float, tmp_path: Path) -> None:
    g = get_generator("shapes-v0.1.0")
    render(g, tmp_path / "job", seed=8, num_images=3, classes="CAR", num_objects=15, gsd_m=gsd, image_width=256)
    coco = json.loads((tmp_path / "job" / "annotations.json").read_text())
    checked = 0
    for ann in coco["annotations"]:
        poly = np.reshape(ann["segmentation"][0], (-1, 2))
        x, y, w, h = ann["bbox"]
        if not (x > 0 and y > 0 and x + w < 256 and y + h < 256):  # clipped at the border
            continue
        assert len(poly) == 4
        sides = sorted(np.linalg.norm(poly - np.roll(poly, 1, axis=0), axis=1))
        assert 1.75 / gsd - 0.01 <= sides[0] <= sides[1] <= 1.85 / gsd + 0.01
        assert 4.3 / gsd - 0.01 <= sides[2] <= sides[3] <= 4.7 / gsd + 0.01
        assert ann["area"] == pytest.approx(sides[0] * sides[2], rel=0.03)
        checked += 1
    assert checked >= 10


def test_classes_rule_and_determinism(tmp_path: Path) -> None:
    g = get_generator("shapes-v0.1.0")
    assert g.check(g.defaults()) == []
    assert g.check({"classes": "CAR+BOAT"})
    assert "BOAT" in g.check({"classes": "CAR+BOAT"})[0]
    assert g.check({"classes": ""})
    assert g.check({"classes": "CAR+CAR"})
    render(g, tmp_path / "a", seed=4, num_images=2)
    render(g, tmp_path / "b", seed=4, num_images=2)
    render(g, tmp_path / "c", seed=5, num_images=2, is_preview=True)
    for name in ("000000.png", "000001.png"):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    assert (tmp_path / "a" / "annotations.json").read_text() == (tmp_path / "b" / "annotations.json").read_text()
    assert sorted(p.name for p in (tmp_path / "c" / "images").iterdir()) == ["000000.png"]
