import numpy as np
import pytest
import tifffile

from opsin.iq.errors import ImageReadError
from opsin.iq.io import read_image, write_image


def test_uint16_geotiff_roundtrip_keeps_dtype_and_tags(geo_ds, tmp_path):
    src = sorted((geo_ds / "images").iterdir())[0]
    arr, meta = read_image(src)
    assert arr.dtype == np.uint16
    assert arr.shape == (90, 90)
    assert {33550, 33922, 34735, 34737} <= set(meta.tags)
    assert meta.is_georeferenced
    a, _b, _c, _d, e, _f = meta.affine()
    assert (a, e) == (0.5, -0.5)
    out = tmp_path / "copy.tif"
    write_image(out, arr, meta)
    back, meta2 = read_image(out)
    np.testing.assert_array_equal(back, arr)
    assert meta2.tags.keys() == meta.tags.keys()
    for code in meta.tags:
        assert meta2.tags[code][2] == meta.tags[code][2]


def test_rgb_tiff_keeps_band_order(datasets, tmp_path):
    src = sorted((datasets / "ds_inria_dataset" / "images").iterdir())[0]
    arr, meta = read_image(src)
    assert arr.ndim == 3
    assert arr.shape[2] == 3
    assert meta.bgr
    out = tmp_path / "x.tif"
    write_image(out, arr, meta)
    np.testing.assert_array_equal(tifffile.imread(out), arr[..., ::-1])  # file order is RGB
    np.testing.assert_array_equal(read_image(out)[0], arr)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_multiband_and_float_roundtrip(tmp_path, ext):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 60000, (20, 30, 6), dtype=np.uint16) if ext == ".tif" else rng.integers(0, 255, (20, 30))
    arr = arr.astype(np.uint16 if ext == ".tif" else np.uint8)
    write_image(tmp_path / f"a{ext}", arr)
    back, _ = read_image(tmp_path / f"a{ext}")
    np.testing.assert_array_equal(back, arr)


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ImageReadError, match=r"broken.jpg"):
        read_image(bad)
    with pytest.raises(ImageReadError, match=r"nothere.png"):
        read_image(tmp_path / "nothere.png")
    badtif = tmp_path / "broken.tif"
    badtif.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match=r"broken.tif"):
        read_image(badtif)
