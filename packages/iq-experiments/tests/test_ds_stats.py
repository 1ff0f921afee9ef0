import json
import os

import pytest
from shapely.geometry import Polygon

from opsin.iq.ds_stats import DsStats, notebook_annots_summary, notebook_imgs_preview
from opsin.iq.sanity import Rasterize, read_geojson


def _by_obj(stats, obj):
    return [s for s in stats if s["obj"] == obj]


def test_coco_stats_on_the_original_images(real_coco_ds):
    coco_ds = real_coco_ds
    ds = DsStats(data_path=str(coco_ds))
    assert ds.output_path == os.path.join(str(coco_ds), "stats")
    stats = ds.perform_stats(show_plots=False)
    images = _by_obj(stats, "images")[0]["stats"]
    assert images["mean_height"] == pytest.approx(496.2)
    assert images["mean_width"] == pytest.approx(580.2)
    histo = _by_obj(stats, "class_histo")[0]["stats"]
    assert len(histo["cat_ids"]) == 26
    assert histo["cat_ids"] == sorted(histo["cat_ids"])
    assert histo["cat_names"][0] == "person"
    assert sum(histo["cat_tags_count"]) == 130
    cover = _by_obj(stats, "area_coverage_by_class")[0]["stats"]
    names = list(cover)
    assert names[0] == "background"
    assert names[-1] == "microwave"
    assert cover["background"] == pytest.approx(0.6045334161699303, rel=1e-12)
    assert cover["microwave"] == pytest.approx(0.017041966175426138, rel=1e-12)
    assert _by_obj(stats, "bbox_aspect_ratio_histo")[0]["stats"]["ar_counts"] == [57, 33, 17, 13, 4, 0, 1, 3, 0, 2]
    assert _by_obj(stats, "bbox_area_histo")[0]["stats"]["ar_counts"] == [108, 7, 5, 4, 3, 1, 1, 0, 0, 1]
    assert _by_obj(stats, "images_aspect_ratio_histo")[0]["stats"]["ar_counts"] == [2, 1, 0, 0, 0, 0, 4, 2, 0, 1]
    assert _by_obj(stats, "images_area_histo")[0]["stats"]["ar_counts"] == [1, 0, 0, 1, 0, 2, 0, 5, 0, 1]
    pngs = sorted(os.listdir(os.path.join(ds.output_path, "images")))
    assert pngs == sorted(
        f"coco_annotations_{k}.png"
        for k in (
            "class_histo",
            "class_area_histo",
            "bbox_aspect_ratio_histo",
            "bbox_area_histo",
            "imgs_aspect_ratio_histo",
            "imgs_area_histo",
        )
    )
    with open(os.path.join(ds.output_path, "stats.json")) as fh:
        assert json.load(fh) == json.loads(json.dumps(stats))


def test_geojson_stats_and_rasterized_coverage_on_the_original_tiles(real_geo_ds, tmp_path):
    geo_ds = real_geo_ds
    Rasterize(str(geo_ds / "annots.geojson"))
    ds = DsStats(data_path=str(geo_ds), output_path=str(tmp_path / "st"))
    assert ds.mask_subdir_lst == [os.path.join(str(geo_ds), "images_mask")]
    stats = ds.perform_stats(show_plots=False)
    cover = stats[0]
    assert cover["obj"] == "area_coverage_by_class"
    assert 7.50 <= cover["stats"][0] <= 7.54
    assert 92.46 <= cover["stats"][255] <= 92.50
    geo = _by_obj(stats, "geojson")[0]["stats"]
    assert set(geo) == {
        "area",
        "rarea",
        "rhigh",
        "rwidth",
        "rangle",
        "bbx_area",
        "bbx_high",
        "bbx_width",
        "bbx_angle",
        "compactness",
        "x",
        "y",
    }
    assert geo["area"][2]["max"] == pytest.approx(296.9, abs=0.1)
    assert geo["area"][0]["min"] <= geo["area"][1]["mean"] <= geo["area"][2]["max"]
    assert 0 < geo["compactness"][2]["max"] <= 1
    assert _by_obj(stats, "images")[0]["stats"] == {"mean_height": 90.0, "mean_width": 90.0}
    pngs = os.listdir(tmp_path / "st" / "images")
    assert "rangle_polarhist.png" in pngs
    assert "images_mask_class_area_histo.png" in pngs


def test_coco_stats(coco_ds):
    gt = json.loads((coco_ds / "coco_annotations.json").read_text())
    ds = DsStats(data_path=str(coco_ds))
    stats = ds.perform_stats(show_plots=False)
    images = _by_obj(stats, "images")[0]["stats"]
    assert images["mean_height"] == pytest.approx(sum(i["height"] for i in gt["images"]) / 10)
    assert images["mean_width"] == pytest.approx(sum(i["width"] for i in gt["images"]) / 10)
    histo = _by_obj(stats, "class_histo")[0]["stats"]
    assert histo["cat_ids"] == list(range(1, 27))  # the categories used, sorted
    assert histo["cat_names"][0] == "class_01"
    assert histo["cat_tags_count"] == [5] * 26  # 130 annotations cycling over 26 classes
    cover = _by_obj(stats, "area_coverage_by_class")[0]["stats"]
    area = {i["id"]: i["height"] * i["width"] for i in gt["images"]}
    first = gt["annotations"][0]
    expected_first = sum(
        a["area"] / area[a["image_id"]] for a in gt["annotations"] if a["category_id"] == first["category_id"]
    ) / (10 + 1)  # the original divides by images + 1
    assert cover[f"class_{first['category_id']:02d}"] == pytest.approx(expected_first, rel=1e-12)
    assert cover["background"] == pytest.approx(1 - sum(v for k, v in cover.items() if k != "background"))
    assert sum(_by_obj(stats, "bbox_area_histo")[0]["stats"]["ar_counts"]) == 130
    assert sum(_by_obj(stats, "images_area_histo")[0]["stats"]["ar_counts"]) == 10
    assert ds.unreadable_images == []
    assert len(os.listdir(os.path.join(ds.output_path, "images"))) == 6


def test_unreadable_images_are_reported(coco_ds):
    (coco_ds / "images" / "notes.png").write_text("not an image")
    ds = DsStats(data_path=str(coco_ds))
    stats = ds.perform_stats(show_plots=False)
    assert [p for p, _ in ds.unreadable_images] == [str(coco_ds / "images" / "notes.png")]
    (record,) = _by_obj(stats, "unreadable_images")
    assert list(record["stats"]) == [str(coco_ds / "images" / "notes.png")]


def test_geojson_stats_and_rasterized_coverage(geo_ds, tmp_path):
    import numpy as np
    import tifffile

    Rasterize(str(geo_ds / "annots.geojson"))
    masks = [tifffile.imread(p) for p in sorted((geo_ds / "images_mask").iterdir())]
    inside = 100.0 * sum(int((m == 0).sum()) for m in masks) / sum(m.size for m in masks)
    ds = DsStats(data_path=str(geo_ds), output_path=str(tmp_path / "st"))
    stats = ds.perform_stats(show_plots=False)
    cover = stats[0]
    assert cover["obj"] == "area_coverage_by_class"
    assert cover["stats"][0] == pytest.approx(inside)
    assert cover["stats"][255] == pytest.approx(100.0 - inside)
    assert 1.0 < inside < 30.0  # the polygons cover a part of each tile, not all of it (masks not inverted)
    geo = _by_obj(stats, "geojson")[0]["stats"]
    polys = read_geojson(geo_ds / "annots.geojson")["geometry"]
    assert geo["area"][2]["max"] == pytest.approx(max(p.area for p in polys))
    assert geo["area"][0]["min"] == pytest.approx(min(p.area for p in polys))
    assert 0 < geo["compactness"][2]["max"] <= 1
    assert _by_obj(stats, "images")[0]["stats"] == {"mean_height": 90.0, "mean_width": 90.0}
    assert np.isfinite(geo["x"][1]["mean"])


def test_shape_helpers():
    rect = Polygon([(0, 0), (4, 0), (4, 2), (0, 2)])
    assert DsStats._calc_minrotrect(rect).equals(rect)
    assert DsStats._calc_bbox(Polygon([(0, 0), (2, 1), (0, 2)])).equals(Polygon([(0, 0), (2, 0), (2, 2), (0, 2)]))
    assert DsStats._area_pol(rect) == 8.0
    assert DsStats._compute_compactness(rect) == pytest.approx(4 * 3.141592653589793 * 8 / 144)
    long_side, short_side, angle = DsStats._calc_rectangle_stats(rect)
    assert (long_side, short_side) == (4.0, 2.0)
    assert angle % 180 == pytest.approx(0.0)
    assert DsStats._calc_centroid(rect) == (2.0, 1.0)
    assert DsStats._area_pol(None) is None
    assert DsStats._calc_rectangle_stats(None) == [None, None, None]


def test_notebook_exports_are_standalone_html(geo_ds, tmp_path):
    out = tmp_path / "prev.html"
    doc = notebook_imgs_preview(str(geo_ds), sample=3, size=32, export_html_filename=str(out), show_inline=False)
    assert out.read_text() == doc
    assert doc.count("<img ") == 3
    assert "data:image/png;base64," in doc
    assert "http://" not in doc
    assert "https://" not in doc
    df = read_geojson(geo_ds / "annots.geojson")
    out2 = tmp_path / "annots.html"
    doc2 = DsStats.notebook_annots_summary(df, ["image_filename", "class_id"], str(out2), show_inline=False)
    assert doc2.count("<tr>") == 16
    assert "opsinSort" in doc2
    assert "https://" not in doc2
    assert notebook_annots_summary is DsStats.notebook_annots_summary
