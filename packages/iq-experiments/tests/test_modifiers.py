import hashlib
import os
import shutil

import numpy as np
import pytest
from _synth import edge_image, flat_field

from opsin.iq.datasets import (
    DSModifier,
    DSModifier_blur,
    DSModifier_dir,
    DSModifier_gsd,
    DSModifier_jpg,
    DSModifier_quant,
    DSModifier_rer,
    DSModifier_sharpness,
    DSModifier_snr,
    DSModifier_sr,
    DSWrapper,
)
from opsin.iq.datasets.modifier_blur import gaussian_kernel_1d
from opsin.iq.errors import ModifierNotConfigured
from opsin.iq.io import read_image, write_image
from opsin.iq.metrics import SNRMetric, sharpness_function_from_array


def _digest(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        h.update(name.encode())
        with open(os.path.join(folder, name), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def _single_image_ds(root, name, img, ext=".png"):
    ds = root / name
    (ds / "images").mkdir(parents=True)
    write_image(ds / "images" / f"img{ext}", img)
    return ds


def test_every_modifier_writes_its_named_copy(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    mods = [
        DSModifier_jpg(params={"quality": 85}),
        DSModifier_quant(params={"bits": 5}),
        DSModifier_quant(params={"bits": 5}, ds_modifier=DSModifier_jpg(params={"quality": 85})),
        DSModifier_rer(params={"rer": 0.3}),
        DSModifier_snr(params={"snr": 20}),
        DSModifier_blur(params={"sigma": 2.0}),
        DSModifier_sharpness(params={"sharpness": 2.0}),
        DSModifier_gsd(params={"scale": 2}),
    ]
    for mod in mods:
        out = dsw.modify(mod)
        assert os.path.isdir(out.data_input)
        assert sorted(os.listdir(out.data_input)) == sorted(os.listdir(dsw.data_input))
        assert os.path.isfile(os.path.join(out.data_path, "coco_annotations.json"))
    parent = os.path.dirname(str(coco_ds))
    for name in [
        "jpg85_modifier",
        "quant5_modifier",
        "jpg85_modifier#quant5_modifier",
        "rer0.3_modifier",
        "snr20_modifier",
        "blur2.0_modifier",
        "sharpness2.0_modifier",
        "gsd0.6_modifier",
    ]:
        assert os.path.isdir(os.path.join(parent, f"ds_coco_dataset#{name}")), name
    assert mods[2].params["modifier"] == "jpg85_modifier#quant5_modifier"
    assert mods[7].params["gsd"] == pytest.approx(0.6)


def test_params_are_copied_not_shared():
    shared = {"quality": 40}
    a = DSModifier_jpg(params=shared)
    a.params["quality"] = 10
    assert shared == {"quality": 40}
    assert DSModifier_jpg().params["quality"] == 65


def test_geotiff_uint16_through_every_modifier_keeps_dtype_and_georeferencing(geo_ds):
    dsw = DSWrapper(data_path=str(geo_ds))
    src_name = sorted(os.listdir(dsw.data_input))[0]
    src, src_meta = read_image(os.path.join(dsw.data_input, src_name))
    mods = [
        DSModifier(),
        DSModifier_dir(),
        DSModifier_jpg(params={"quality": 50}),
        DSModifier_quant(params={"bits": 8, "bit_depth": 11}),
        DSModifier_blur(params={"sigma": 1.5}),
        DSModifier_gsd(params={"scale": 2.0}),
        DSModifier_sharpness(params={"sharpness": 2.0}),
        DSModifier_snr(params={"snr": 10, "initial_snr": 100}),
        DSModifier_rer(params={"rer": 0.3, "initial_rer": 0.55}),
    ]
    for mod in mods:
        out = dsw.modify(mod)
        arr, meta = read_image(os.path.join(out.data_input, src_name))
        assert arr.dtype == np.uint16, mod.name
        assert arr.shape == src.shape, mod.name
        assert meta.tags.keys() == src_meta.tags.keys(), mod.name
        assert meta.affine() == src_meta.affine(), mod.name
        assert meta.tags[34737][2] == src_meta.tags[34737][2]
        # the values stay in the data's range, not squeezed into 8 bits
        assert abs(float(arr.mean()) - float(src.mean())) < 0.05 * float(src.mean()), mod.name
        assert arr.max() > 255, mod.name


def test_jpg_quality_lowers_psnr_and_writes_single_compression(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    name = sorted(os.listdir(dsw.data_input))[0]
    ref = read_image(os.path.join(dsw.data_input, name))[0].astype(np.float64)
    psnr = []
    for q in (90, 50, 10):
        out = dsw.modify(DSModifier_jpg(params={"quality": q}))
        arr = read_image(os.path.join(out.data_input, name))[0].astype(np.float64)
        psnr.append(10 * np.log10(255.0**2 / np.mean((arr - ref) ** 2)))
    assert psnr[0] > psnr[1] > psnr[2]


def test_quant_keeps_top_bits_and_rejects_bad_input():
    from opsin.iq.datasets.modifier_quant import quantize

    x = np.array([[0, 1, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(quantize(x, 1), [[0, 0, 0, 128, 128]])
    np.testing.assert_array_equal(quantize(x, 5), x & 0b11111000)
    y = np.array([65535, 1000, 4095], np.uint16)
    np.testing.assert_array_equal(quantize(y, 4), y & 0xF000)
    np.testing.assert_array_equal(quantize(y, 4, bit_depth=12), y & 0x0F00)
    with pytest.raises(TypeError):
        quantize(np.zeros(3, np.float32), 4)
    with pytest.raises(TypeError):
        quantize(np.zeros(3, np.int16), 4)
    with pytest.raises(ValueError, match="bits=9"):
        quantize(x, 9)


def test_blur_kernel_and_impulse_response():
    from opsin.iq.datasets.modifier_blur import gaussian_blur

    k = gaussian_kernel_1d(1.0)
    assert k.size == 7
    assert k.sum() == pytest.approx(1.0)
    assert gaussian_kernel_1d(2.0).size == 13
    img = np.zeros((41, 41), np.float64)
    img[20, 20] = 1.0
    out = gaussian_blur(img, 2.0)
    k2 = gaussian_kernel_1d(2.0)
    np.testing.assert_allclose(out[14:27, 14:27], np.outer(k2, k2), atol=1e-15)
    with pytest.raises(ValueError, match="kernel_size"):
        gaussian_kernel_1d(1.0, 6)


def test_gsd_keeps_size_and_removes_high_frequencies(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    out = dsw.modify(DSModifier_gsd(params={"scale": 2.0}))
    name = sorted(os.listdir(dsw.data_input))[0]
    a = read_image(os.path.join(dsw.data_input, name))[0].astype(np.float64)[..., 0]
    b = read_image(os.path.join(out.data_input, name))[0].astype(np.float64)[..., 0]
    assert a.shape == b.shape

    def hf(x):
        f = np.abs(np.fft.fftshift(np.fft.fft2(x - x.mean())))
        h, w = f.shape
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.hypot((yy - h / 2) / h, (xx - w / 2) / w)
        return f[r > 0.3].sum()

    assert hf(b) < 0.5 * hf(a)


def test_sharpness_identity_and_smoothing():
    from opsin.iq.datasets.modifier_sharpness import adjust_sharpness

    img = np.random.default_rng(0).integers(0, 255, (20, 20, 3)).astype(np.uint8)
    np.testing.assert_array_equal(adjust_sharpness(img, 1.0), img)
    smooth = adjust_sharpness(img, 0.0)
    np.testing.assert_array_equal(smooth[0], img[0])
    assert smooth[1:-1, 1:-1].std() < img[1:-1, 1:-1].std()
    assert adjust_sharpness(img, 3.0).dtype == np.uint8


def test_snr_modifier_closed_loop(tmp_path):
    # flat field at SNR 50 (100 +/- 2); target 20 -> measured mean/std within 3 % of 20
    ds = _single_image_ds(tmp_path, "flat", flat_field(100, 2, size=256))
    out = DSWrapper(data_path=str(ds)).modify(DSModifier_snr(params={"snr": 20, "initial_snr": 50}))
    arr = read_image(os.path.join(out.data_input, "img.png"))[0].astype(np.float64)
    assert arr.mean() / arr.std() == pytest.approx(20, rel=0.03)
    assert SNRMetric(None, ext="png", params={"bias_correction": True}).apply_folder(out.data_input)[
        "snr_mean"
    ] == pytest.approx(20, rel=0.03)


def test_snr_modifier_initial_snr_wins_and_unknown_dataset():
    assert DSModifier_snr(params={"snr": 10, "initial_snr": 40, "dataset": "xview"}).initial_snr == 40
    assert DSModifier_snr(params={"snr": 10}, get_initial_from_dataset="DeepGlobe").initial_snr == 45
    with pytest.raises(KeyError, match="xview"):
        DSModifier_snr(params={"snr": 10, "dataset": "nowhere"})
    assert DSModifier_rer(params={"rer": 0.3}).initial_rer == 0.56


def test_rer_modifier_closed_loop(tmp_path):
    ds = _single_image_ds(tmp_path, "edge", edge_image(0.6))
    out = DSWrapper(data_path=str(ds)).modify(DSModifier_rer(params={"rer": 0.30, "initial_rer": 0.595}))
    arr = read_image(os.path.join(out.data_input, "img.png"))[0]
    res = sharpness_function_from_array(arr, metrics=["RER"], esf_model="erf", calculate_mean=True)
    assert res["mean"]["RER_X"][0] == pytest.approx(0.30, abs=0.03)
    assert res["mean"]["RER_Y"][0] == pytest.approx(0.30, abs=0.03)


def test_rer_target_above_initial_is_identity(tmp_path, caplog):
    img = edge_image(1.0)
    ds = _single_image_ds(tmp_path, "edge", img)
    out = DSWrapper(data_path=str(ds)).modify(DSModifier_rer(params={"rer": 0.7, "initial_rer": 0.4}))
    np.testing.assert_array_equal(read_image(os.path.join(out.data_input, "img.png"))[0], img)
    assert "unchanged" in caplog.text


def test_same_modifier_twice_gives_identical_bytes(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    digests = []
    for _ in range(2):
        _, path, _ = DSModifier_snr(params={"snr": 15, "seed": 7}).modify(ds_wrapper=dsw, force=True)
        digests.append(_digest(os.path.join(path, "images")))
    assert digests[0] == digests[1]
    _, other, _ = DSModifier_snr(params={"snr": 15, "seed": 8}).modify(ds_wrapper=dsw, force=True)
    assert _digest(os.path.join(other, "images")) != digests[0]


@pytest.mark.slow
def test_parallel_equals_sequential(coco_ds, tmp_path):
    dsw = DSWrapper(data_path=str(coco_ds))
    _, seq, _ = DSModifier_snr(params={"snr": 15}, output_root=str(tmp_path / "seq")).modify(ds_wrapper=dsw)
    _, par, _ = DSModifier_snr(params={"snr": 15}, output_root=str(tmp_path / "par"), n_jobs=2).modify(ds_wrapper=dsw)
    assert _digest(os.path.join(seq, "images")) == _digest(os.path.join(par, "images"))


def test_cache_reuse_and_rebuilds(coco_ds, monkeypatch):
    dsw = DSWrapper(data_path=str(coco_ds))
    _, path, _ = DSModifier_blur(params={"sigma": 1.0}).modify(ds_wrapper=dsw)
    probe = os.path.join(path, "images", sorted(os.listdir(dsw.data_input))[0])
    ino = os.stat(probe).st_ino
    assert os.path.isfile(os.path.join(path, ".opsin-iq-modifier.json"))
    # cache hit: nothing rewritten, even if the source images are unreadable now (they are never opened)
    for name in os.listdir(dsw.data_input):
        os.chmod(os.path.join(dsw.data_input, name), 0)
    try:
        DSModifier_blur(params={"sigma": 1.0}).modify(ds_wrapper=dsw)
    finally:
        for name in os.listdir(dsw.data_input):
            os.chmod(os.path.join(dsw.data_input, name), 0o644)
    assert os.stat(probe).st_ino == ino
    # same name, different params -> rebuilt
    DSModifier_blur(params={"sigma": 1.0, "kernel_size": 5}).modify(ds_wrapper=dsw)
    assert os.stat(probe).st_ino != ino
    ino = os.stat(probe).st_ino
    # source changed -> rebuilt
    shutil.copy(coco_ds / "coco_annotations.json", coco_ds / "coco_annotations.json.bak")
    os.remove(coco_ds / "coco_annotations.json.bak")
    os.utime(os.path.join(dsw.data_input, os.path.basename(probe)), (1, 1))
    DSModifier_blur(params={"sigma": 1.0, "kernel_size": 5}).modify(ds_wrapper=dsw)
    assert os.stat(probe).st_ino != ino
    ino = os.stat(probe).st_ino
    # incomplete manifest -> rebuilt; env var and force bypass the cache
    monkeypatch.setenv("OPSIN_IQ_NO_CACHE", "1")
    DSModifier_blur(params={"sigma": 1.0, "kernel_size": 5}).modify(ds_wrapper=dsw)
    assert os.stat(probe).st_ino != ino
    monkeypatch.delenv("OPSIN_IQ_NO_CACHE")
    ino = os.stat(probe).st_ino
    DSModifier_blur(params={"sigma": 1.0, "kernel_size": 5}).modify(ds_wrapper=dsw, force=True)
    assert os.stat(probe).st_ino != ino
    assert not [n for n in os.listdir(os.path.dirname(path)) if ".tmp-" in n]


def test_sr_is_an_extension_point(coco_ds):
    mod = DSModifier_sr()
    assert mod.name == "MSRN_0.6_to_0.3_modifier"
    assert mod.params["upscale_factor"] == pytest.approx(2.0)
    assert DSModifier_sr(params={"source_gsd": 0.6, "upscale_factor": 3}).params["target_gsd"] == pytest.approx(0.2)
    with pytest.raises(ModifierNotConfigured, match="_super_resolve"):
        mod.modify(data_path=str(coco_ds))
    assert not os.path.exists(str(coco_ds) + "#MSRN_0.6_to_0.3_modifier")

    class Nearest2x(DSModifier_sr):
        def _super_resolve(self, img):
            return np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)

    _, path, _ = Nearest2x().modify(data_path=str(coco_ds))
    name = sorted(os.listdir(coco_ds / "images"))[0]
    a = read_image(os.path.join(coco_ds, "images", name))[0]
    b = read_image(os.path.join(path, "images", name))[0]
    assert b.shape[:2] == (2 * a.shape[0], 2 * a.shape[1])


def test_user_modifier_subclass(coco_ds):
    class DSModifier_invert(DSModifier_dir):  # noqa: N801
        def __init__(self, ds_modifier=None, params=None, **kw):
            self.params = dict(params or {})
            self.name = "invert_modifier"
            super().__init__(ds_modifier, **kw)

        def _mod_img(self, img):
            return (255 - img).astype(img.dtype)

    out = DSWrapper(data_path=str(coco_ds)).modify(DSModifier_invert(ds_modifier=DSModifier_quant()))
    assert out.params["modifier"] == "quant4_modifier#invert_modifier"
    assert out.data_path.endswith("ds_coco_dataset#quant4_modifier#invert_modifier")
