import os

import numpy as np
import tifffile

from opsin.iq.datasets import DSModifier_dir, DSWrapper
from opsin.iq.datasets.ds_tools import format_param_value
from opsin.iq.sanity import Rasterize


def test_rasterize_creates_masks_and_dir_modifier_carries_them(geo_ds):
    written = Rasterize(str(geo_ds / "annots.geojson")).mask_paths  # written when constructed, as the original
    images = sorted(os.listdir(geo_ds / "images"))
    assert sorted(os.path.basename(p) for p in written) == [f"{n}_mask" for n in images]
    dsw = DSWrapper(data_path=str(geo_ds))
    assert dsw.mask_annotations_dir == str(geo_ds / "images") + "_mask"
    out = dsw.modify(DSModifier_dir())
    assert sorted(os.listdir(os.path.join(out.data_path, "images_mask"))) == [f"{n}_mask" for n in images]
    assert out.mask_annotations_dir.endswith("images_mask")


def test_rasterize_is_not_inverted(geo_ds):
    import json

    import shapely
    import shapely.geometry

    Rasterize(str(geo_ds / "annots.geojson"))
    features = json.loads((geo_ds / "annots.geojson").read_text())["features"]
    for name in sorted(os.listdir(geo_ds / "images")):
        mask = tifffile.imread(geo_ds / "images_mask" / f"{name}_mask")
        assert mask.dtype == np.uint8
        assert mask.shape == (90, 90)
        # class 0 inside the polygons: their area in 0.5 m pixels, up to the pixels their outline crosses
        polys = [shapely.geometry.shape(f["geometry"]) for f in features if f["properties"]["image_filename"] == name]
        union = shapely.union_all(polys)
        area_px, border_px = union.area / 0.25, union.length / 0.5
        inside = int((mask == 0).sum())
        assert abs(inside - area_px) <= border_px, name
        assert int((mask == 255).sum()) == 90 * 90 - inside


def test_rasterize_is_not_inverted_on_the_original_tiles(real_geo_ds):
    Rasterize(str(real_geo_ds / "annots.geojson"))
    # the largest polygon of the fixture (297 m2 ~ 1188 px at 0.5 m) lies in this image
    mask = tifffile.imread(real_geo_ds / "images_mask" / "sample_geotiff_733826_3724959.tif_mask")
    assert mask.dtype == np.uint8
    assert mask.shape == (90, 90)
    inside = int((mask == 0).sum())
    assert 1100 < inside < 1300
    assert int((mask == 255).sum()) == 90 * 90 - inside


def test_format_param_value():
    assert format_param_value(2.0) == "2.0"
    assert format_param_value(0.3 * 2) == "0.6"
    assert format_param_value(5) == "5"
    assert format_param_value("xview") == "xview"
