"""Modifier parameters are checked where they are given: no misspelt name or out-of-range value is used silently."""

from __future__ import annotations

import pytest

from opsin.iq.datasets import (
    MODIFIERS,
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
    ModifierParamError,
    make_modifier,
    modifier_class,
)


@pytest.mark.parametrize(
    ("cls", "params", "needle"),
    [
        (DSModifier_jpg, {"qualty": 50}, "unknown parameter 'qualty'"),
        (DSModifier_jpg, {"quality": 500}, "'quality' is out of range (allowed 1..100)"),
        (DSModifier_jpg, {"quality": 0}, "'quality' is out of range"),
        (DSModifier_jpg, {"quality": 50.5}, "'quality' must be an integer"),
        (DSModifier_jpg, {"quality": True}, "'quality' must be an integer"),
        (DSModifier_jpg, {"quality": "high"}, "'quality' must be an integer"),
        (DSModifier_quant, {"bits": 0}, "'bits' is out of range"),
        (DSModifier_quant, {"bits": 17}, "'bits' is out of range (allowed 1..16)"),
        (DSModifier_quant, {"bits": 12, "bit_depth": 11}, "'bits' is out of range (allowed 1..11)"),
        (DSModifier_blur, {"sigma": 0}, "'sigma' is out of range"),
        (DSModifier_blur, {"sigm": 2}, "unknown parameter 'sigm'"),
        (DSModifier_gsd, {"interpolation": 7}, "'interpolation' is out of range (allowed 0..5)"),
        (DSModifier_gsd, {"scale": -2}, "'scale' is out of range"),
        (DSModifier_sharpness, {"sharpness": -1}, "'sharpness' is out of range"),
        (DSModifier_snr, {"snr": 0}, "'snr' is out of range"),
        (DSModifier_snr, {"snr": 20, "dataset": 3}, "'dataset' must be a string"),
        (DSModifier_rer, {"rer": 1.2}, "'rer' is out of range (allowed (0, 1))"),
        (DSModifier_rer, {"rer": 0.3, "initial_rer": 0}, "'initial_rer' is out of range"),
        (DSModifier_sr, {"algo": "MSRN", "target": 0.3}, "unknown parameter 'target'"),
        (DSModifier_jpg, {"quality": 50, "seed": -1}, "'seed' is out of range"),
    ],
)
def test_bad_parameters_raise_naming_them(cls, params, needle):
    with pytest.raises(ModifierParamError) as info:
        cls(params=params)
    assert needle in str(info.value)
    assert cls.__name__ in str(info.value)
    assert isinstance(info.value, ValueError)


def test_valid_parameters_and_logged_ones_are_accepted():
    assert DSModifier_jpg(params={"quality": 1}).name == "jpg1_modifier"
    assert DSModifier_quant(params={"bits": 8, "bit_depth": 11}).name == "quant8_modifier"
    assert DSModifier_blur(params={"sigma": 1.5, "kernel_size": 7}).name == "blur1.5_modifier"
    assert DSModifier_snr(params={"snr": 15.5, "dataset": "inria-aid", "seed": 3}).name == "snr15.5_modifier"
    # params read back from a logged run (with the derived ``modifier`` and ``gsd``) build the same modifier
    for mod in (DSModifier_jpg(params={"quality": 40}), DSModifier_gsd(params={"scale": 2})):
        again = type(mod)(params=mod.log_parameters())
        assert again._get_name() == mod._get_name()
        assert again.log_parameters() == mod.log_parameters()


def test_one_registry_of_modifier_names():
    assert dict(MODIFIERS) == {
        "base": DSModifier,
        "blur": DSModifier_blur,
        "dir": DSModifier_dir,
        "gsd": DSModifier_gsd,
        "jpg": DSModifier_jpg,
        "quant": DSModifier_quant,
        "rer": DSModifier_rer,
        "sharpness": DSModifier_sharpness,
        "snr": DSModifier_snr,
    }
    with pytest.raises(TypeError):
        MODIFIERS["warp"] = DSModifier  # type: ignore[index]
    assert make_modifier("jpg", {"quality": 40}, output_root="/tmp/x").output_root == "/tmp/x"
    assert make_modifier("base").name == "base_modifier"
    assert make_modifier("dir", {"seed": 4}).params["seed"] == 4
    with pytest.raises(ModifierParamError, match="takes no parameters"):
        make_modifier("base", {"quality": 3})
    with pytest.raises(ModifierParamError, match=r"unknown modifier 'warp' \(known: base, blur, dir"):
        modifier_class("warp")

    from opsin.iq import _cli_experiments, cli

    assert cli.MODIFIERS is MODIFIERS
    assert not hasattr(_cli_experiments, "MODIFIER_TYPES")  # no second table


def test_experiment_files_check_modifier_parameters(tmp_path, coco_ds):
    from opsin.iq._cli_experiments import load_experiment_file
    from opsin.iq.errors import ExperimentFileError

    toml = tmp_path / "exp.toml"
    toml.write_text(
        f'experiment_name = "x"\nscript = "example:objectness"\ntrain_ds = "{coco_ds}"\n'
        '[[modifiers]]\ntype = "jpg"\nparams = { quality = [10, 500] }\n'
    )
    with pytest.raises(ExperimentFileError, match=r"modifiers\[0\].*'quality' is out of range"):
        load_experiment_file(toml)
