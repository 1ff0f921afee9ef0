import json
import os

import pandas as pd
import pytest
from shapely.geometry import Polygon

from opsin.iq.errors import AnnotationFormatError, DSAnnotationsNotFound
from opsin.iq.sanity import Rasterize, SanityCheck, clean_list, read_geojson, write_geojson


def _load(path):
    with open(path) as fh:
        return json.load(fh)


def _dump(obj, path):
    with open(path, "w") as fh:
        json.dump(obj, fh)


def test_clean_list():
    assert clean_list([1, "dos", "tres", 4, 5], [0, 4, 2, 4]) == ["dos", 4]


def test_clean_coco_has_no_problems(coco_ds, tmp_path):
    sc = SanityCheck(data_path=str(coco_ds), output_path=str(tmp_path / "out"))
    assert sc.check_annotations() == []
    assert sc.check_images() == []
    assert os.path.isdir(tmp_path / "out" / "images")
    assert not sc.isgeo


def test_duplicate_images_and_file_type(coco_ds, tmp_path):
    fn = coco_ds / "coco_annotations.json"
    gt = _load(fn)
    gt["images"].append(dict(gt["images"][0]))  # index 10: same id
    dup_name = dict(gt["images"][1])
    dup_name["id"] = 999999
    gt["images"].append(dup_name)  # index 11: same file name
    rar = dict(gt["images"][2])
    rar["id"], rar["file_name"] = 666, "666.rar"
    gt["images"].append(rar)  # index 12
    _dump(gt, fn)
    problems = SanityCheck(data_path=str(coco_ds), output_path=str(tmp_path / "o")).check_annotations()
    by_code = {p["err_code"]: p for p in problems}
    assert by_code["ERR_JSON_IMG_ID_DUP"]["err_sbi"] == 10
    assert by_code["ERR_JSON_IMG_FNAME_DUP"]["err_sbi"] == 11
    assert by_code["ERR_JSON_IMG_FILE_TYPE"]["err_sbi"] == 12
    assert all(p["err_obj"] == "images" and p["err_file"] == str(fn) for p in problems)
    assert "err_txt" in by_code["ERR_JSON_IMG_ID_DUP"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"bbox": [1, 2, 3]}, "ERR_JSON_ANN_BBOX_LEN"),
        ({"bbox": [1, "2", 3, 4]}, "ERR_JSON_ANN_BBOX_TYPE"),
        ({"bbox": [1, -2, 3, 4]}, "ERR_JSON_ANN_BBOX_NEG"),
        ({"segmentation": [[1, 2, "x", 4, 5, 6]]}, "ERR_JSON_ANN_SEG_TYPE"),
        ({"segmentation": [[1, 2, -3, 4, 5, 6]]}, "ERR_JSON_ANN_SEG_NEG"),
        ({"segmentation": [[1, 2, 3, 4, 5]]}, "ERR_JSON_ANN_SEG_PAR"),
        ({"segmentation": {"counts": [1, 2.5], "size": [3, 3]}}, "ERR_JSON_ANN_SEG_TYPE"),
        ({"segmentation": {"counts": [1, -2], "size": [3, 3]}}, "ERR_JSON_ANN_SEG_NEG"),
    ],
)
def test_annotation_codes(change, code):
    an = {"bbox": [1.0, 2.0, 3.0, 4.0], "segmentation": [[1, 2, 3, 4, 5, 6]]}
    an.update(change)
    assert code in SanityCheck.check_coco_annotation(an)
    assert SanityCheck.check_coco_annotation({"bbox": [1.0, 2.0, 3.0, 4.0], "segmentation": [[1, 2, 3, 4, 5, 6]]}) == []


def test_fix_coco_removes_flagged_and_orphans_and_reports(coco_ds, tmp_path):
    fn = coco_ds / "coco_annotations.json"
    gt = _load(fn)
    n_img, n_ann = len(gt["images"]), len(gt["annotations"])
    gt["annotations"][0]["bbox"] = [1, 2, -3, 4]
    rar = dict(gt["images"][3])
    rar["file_name"] = "666.rar"
    gt["images"][3] = rar
    orphans = sum(1 for a in gt["annotations"] if a["image_id"] == rar["id"])
    _dump(gt, fn)
    out = tmp_path / "fixed"
    sc = SanityCheck(data_path=str(coco_ds), output_path=str(out))
    assert sc.out_annotfn == str(out / "coco_annotations.json")  # the original's attribute, known before fixing
    report = sc.fix_annotations(sc.check_annotations(), copy_images=True)
    fixed = _load(sc.out_annotfn)
    assert len(fixed["images"]) == n_img - 1
    removed_ann = 1 + orphans - (1 if gt["annotations"][0]["image_id"] == rar["id"] else 0)
    assert len(fixed["annotations"]) == n_ann - removed_ann
    assert {r["reason"] for r in report} >= {"ERR_JSON_ANN_BBOX_NEG", "ERR_JSON_IMG_FILE_TYPE"}
    assert any("no remaining image" in r["reason"] for r in report)
    assert len(os.listdir(out / "images")) == n_img - 1
    assert _load(out / "sanity_report.json") == report


def test_fix_coco_image_size(coco_ds):
    gt = _load(coco_ds / "coco_annotations.json")
    truth = [(im["height"], im["width"]) for im in gt["images"][:2]]
    imgs = [dict(im, height=1, width=1) for im in gt["images"][:2]]
    SanityCheck.fix_coco_image_size(imgs, str(coco_ds / "images"))
    assert [(im["height"], im["width"]) for im in imgs] == truth


def test_fix_coco_image_size_on_the_original_images(real_coco_ds):
    gt = _load(real_coco_ds / "coco_annotations.json")
    imgs = [dict(im, height=1, width=1) for im in gt["images"][:2]]
    SanityCheck.fix_coco_image_size(imgs, str(real_coco_ds / "images"))
    assert [(im["height"], im["width"]) for im in imgs] == [(360, 640), (480, 640)]


def test_not_coco_and_missing_annotations(coco_ds, tmp_path):
    _dump({"type": "FeatureCollection", "features": []}, coco_ds / "coco_annotations.json")
    sc = SanityCheck(data_path=str(coco_ds), output_path=str(tmp_path / "o"))
    with pytest.raises(AnnotationFormatError, match=r"coco_annotations.json.*not COCO"):
        sc.check_annotations()
    (coco_ds / "coco_annotations.json").write_text("{not json")
    with pytest.raises(AnnotationFormatError, match="not valid JSON"):
        SanityCheck(data_path=str(coco_ds), output_path=str(tmp_path / "o")).check_annotations()
    os.remove(coco_ds / "coco_annotations.json")
    with pytest.raises(DSAnnotationsNotFound, match="ds_coco_dataset"):
        SanityCheck(data_path=str(coco_ds), output_path=str(tmp_path / "o"))


def test_corrupt_and_missing_images_are_reported(coco_ds, tmp_path):
    names = sorted(os.listdir(coco_ds / "images"))
    (coco_ds / "images" / names[0]).write_bytes(b"garbage, not a jpeg")
    os.remove(coco_ds / "images" / names[1])
    probs = SanityCheck(data_path=str(coco_ds), output_path=str(tmp_path / "o")).check_images()
    codes = sorted((p["err_code"], os.path.basename(p["err_txt"].split(":")[0].split()[-1])) for p in probs)
    assert codes == sorted([("ERR_IMG_UNREADABLE", names[0]), ("ERR_IMG_MISSING", names[1])])


def _geo_with_problems(geo_ds):
    fn = geo_ds / "annots.geojson"
    data = _load(fn)
    assert len(data["features"]) == 15
    single = {}
    for i, f in enumerate(data["features"]):
        single.setdefault(f["properties"]["image_filename"], []).append(i)
    lone = [v[0] for v in single.values() if len(v) == 1]
    data["features"][lone[0]]["properties"]["class_id"] = None  # NaN row
    data["features"][lone[1]]["geometry"] = None  # missing geometry
    bowtie = [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]  # self-intersecting: repaired by buffer(0)
    shared = next(v[1] for v in single.values() if len(v) > 1)
    data["features"][shared]["geometry"] = {"type": "Polygon", "coordinates": bowtie}
    _dump(data, fn)
    return fn


def test_geojson_autofix_removes_nan_and_empty_and_repairs_invalid(geo_ds, tmp_path):
    _geo_with_problems(geo_ds)
    out = tmp_path / "geo_fixed"
    sc = SanityCheck(data_path=str(geo_ds), output_path=str(out))
    assert sc.isgeo
    assert sc.check_annotations() == []
    report = sc.autofix()
    df = read_geojson(out / "annots.geojson")
    assert len(df) == 13
    assert df["image_filename"].nunique() == 8
    assert all(g.is_valid and not g.is_empty for g in df["geometry"])
    assert df.attrs["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32616"
    reasons = [r["reason"] for r in report]
    assert any("NaN" in r for r in reasons)
    assert any("empty" in r for r in reasons)
    assert any("buffer(0)" in r for r in reasons)


def test_geojson_invalid_removed_without_repair(geo_ds, tmp_path):
    _geo_with_problems(geo_ds)
    sc = SanityCheck(data_path=str(geo_ds), output_path=str(tmp_path / "o"))
    sc.autofix(try_fix_geoms=False)
    assert len(read_geojson(tmp_path / "o" / "annots.geojson")) == 12


def test_geojson_file_type_flag(geo_ds, tmp_path):
    fn = geo_ds / "annots.geojson"
    data = _load(fn)
    data["features"][3]["properties"]["image_filename"] = "666.rar"
    _dump(data, fn)
    probs = SanityCheck(data_path=str(geo_ds), output_path=str(tmp_path / "o")).check_annotations()
    assert [(p["err_sbi"], p["err_code"]) for p in probs] == [(3, "ERR_JSON_IMG_FILE_TYPE")]


def test_rasterize_dims_and_dtype(geo_ds):
    written = Rasterize(str(geo_ds / "annots.geojson")).mask_paths  # written when constructed, as the original
    import numpy as np
    import tifffile

    from opsin.iq.io import read_image

    for path in written:
        mask = tifffile.imread(path)
        assert mask.shape == (90, 90)
        assert np.issubdtype(mask.dtype, np.integer)
        assert set(np.unique(mask)) <= {0, 255}
        _, meta = read_image(path.replace("images_mask", "images").removesuffix("_mask"))
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].tags[33922].value == meta.tags[33922][2]


def test_geojson_roundtrip_with_nan(tmp_path):
    df = pd.DataFrame(
        {
            "image_filename": ["a.tif", None],
            "class_id": [1.0, float("nan")],
            "geometry": [Polygon([(0, 0), (1, 0), (1, 1)]), None],
        }
    )
    df.attrs["crs"] = {"type": "name", "properties": {"name": "EPSG:4326"}}
    write_geojson(df, tmp_path / "x.geojson")
    raw = _load(tmp_path / "x.geojson")
    assert raw["features"][1]["properties"]["class_id"] is None
    assert raw["features"][1]["geometry"] is None
    back = read_geojson(tmp_path / "x.geojson")
    assert back["geometry"][0].equals(df["geometry"][0])
    assert back.attrs["crs"] == df.attrs["crs"]
