import os
import shutil

import pytest

from opsin.iq.datasets import DSAnnotationsNotFound, DSLayoutError, DSModifier, DSNotFound, DSWrapper


def test_coco_discovery(coco_ds):
    data_path = str(coco_ds)
    dsw = DSWrapper(data_path=data_path)
    assert dsw.data_path == data_path
    assert dsw.parent_folder == os.path.dirname(data_path)
    assert dsw.data_input == os.path.join(data_path, "images")
    assert dsw.json_annotations == os.path.join(data_path, "coco_annotations.json")
    assert dsw.geojson_annotations is None
    assert dsw.mask_annotations_dir == ""
    assert dsw.params == {"ds_name": "ds_coco_dataset"}
    assert dsw.get_annotations() == [dsw.json_annotations]


def test_geo_discovery(geo_ds):
    dsw = DSWrapper(data_path=str(geo_ds))
    assert dsw.geojson_annotations == os.path.join(str(geo_ds), "annots.geojson")
    assert dsw.json_annotations is None
    assert dsw.get_annotations() == [dsw.geojson_annotations]


def test_explicit_arguments_without_data_path(coco_ds):
    data_input = os.path.join(str(coco_ds), "images")
    ann = os.path.join(str(coco_ds), "coco_annotations.json")
    dsw = DSWrapper(data_input=data_input, json_annotations=ann)
    assert dsw.data_path == str(coco_ds)
    assert dsw.parent_folder == os.path.dirname(str(coco_ds))
    assert dsw.json_annotations == ann
    with pytest.raises(DSAnnotationsNotFound, match="images"):
        DSWrapper(data_input=data_input)
    with pytest.raises(DSNotFound):
        DSWrapper(data_input=os.path.join(str(coco_ds), "nope"), json_annotations=ann)


def test_missing_and_ambiguous_layouts(coco_ds, tmp_path):
    with pytest.raises(DSNotFound, match="nope"):
        DSWrapper(data_path=str(tmp_path / "nope"))
    os.makedirs(coco_ds / "more_images")
    with pytest.raises(DSLayoutError, match="images, more_images"):
        DSWrapper(data_path=str(coco_ds))
    dsw = DSWrapper(data_path=str(coco_ds), data_input=str(coco_ds / "images"))
    assert dsw.data_input.endswith("images")
    os.rmdir(coco_ds / "more_images")
    shutil.copy(coco_ds / "coco_annotations.json", coco_ds / "second.json")
    with pytest.raises(DSLayoutError, match=r"several .json"):
        DSWrapper(data_path=str(coco_ds))
    explicit = str(coco_ds / "second.json")
    assert DSWrapper(data_path=str(coco_ds), json_annotations=explicit).json_annotations == explicit


def test_stats_and_mask_folders_are_not_image_folders(coco_ds):
    os.makedirs(coco_ds / "stats")
    os.makedirs(coco_ds / "images_mask")
    os.makedirs(coco_ds / ".hidden")
    dsw = DSWrapper(data_path=str(coco_ds))
    assert dsw.data_input.endswith("images")
    assert dsw.mask_annotations_dir == os.path.join(str(coco_ds), "images") + "_mask"


def test_base_modifier_copy_and_params(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    mod = DSModifier()
    assert mod.name == "base_modifier"
    assert mod._get_name() == "base_modifier"
    out = dsw.modify(mod)
    expected = os.path.join(os.path.dirname(str(coco_ds)), "ds_coco_dataset#base_modifier")
    assert out.data_path == expected
    assert out.params == {"ds_name": "ds_coco_dataset#base_modifier", "modifier": "base_modifier"}
    assert sorted(os.listdir(out.data_input)) == sorted(os.listdir(dsw.data_input))
    assert os.path.isfile(os.path.join(expected, "coco_annotations.json"))
    nested = DSModifier(DSModifier())
    assert nested._get_name() == "base_modifier#base_modifier"
    out2 = dsw.modify(nested)
    assert out2.data_path.endswith("ds_coco_dataset#base_modifier#base_modifier")
    assert out2.params["modifier"] == "base_modifier#base_modifier"


def test_modify_returns_paths_and_defaults_data_path(coco_ds):
    mod_input, mod_path, parent = DSModifier().modify(data_input=str(coco_ds / "images"))
    assert mod_path == os.path.join(os.path.dirname(str(coco_ds)), "ds_coco_dataset#base_modifier")
    assert mod_input == os.path.join(mod_path, "images")
    assert parent == os.path.dirname(str(coco_ds))


def test_symlink_toggle_returns_input_wrapper(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    mod = DSModifier()
    mod._toggle_on_symlink_for_base_modifier()
    assert mod.name == "do not duplicate dataset"
    assert mod.modify_ds_wrapper(dsw) is dsw
    assert not os.path.exists(str(coco_ds) + "#base_modifier")
    mod._toggle_off_symlink_for_base_modifier()
    assert mod.name == "base_modifier"


def test_log_parameters_is_a_copy(coco_ds):
    dsw = DSWrapper(data_path=str(coco_ds))
    p = dsw.log_parameters()
    p["x"] = 1
    assert "x" not in dsw.params
    dsw.set_log_parameters({"split": "train"})
    assert dsw.params["split"] == "train"


def test_output_root(coco_ds, tmp_path):
    out_root = tmp_path / "elsewhere"
    _, mod_path, parent = DSModifier(output_root=str(out_root)).modify(data_path=str(coco_ds))
    assert mod_path == os.path.join(str(out_root), "ds_coco_dataset#base_modifier")
    assert parent == str(out_root)


def test_sidecar_json_files_do_not_hide_the_coco_file(coco_ds):
    # A synth-service shapes job folder: images/ + annotations.json (COCO) + job.json + timing.json sidecars.
    (coco_ds / "job.json").write_text('{"name": "shapes-v0.1.0", "params": {}}')
    (coco_ds / "timing.json").write_text('{"num_frames": 10}')
    dsw = DSWrapper(data_path=str(coco_ds))
    assert dsw.json_annotations == str(coco_ds / "coco_annotations.json")
    # Two COCO files stay ambiguous.
    shutil.copy(coco_ds / "coco_annotations.json", coco_ds / "second.json")
    with pytest.raises(DSLayoutError, match=r"several .json"):
        DSWrapper(data_path=str(coco_ds))
