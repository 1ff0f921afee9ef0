"""The generator plugin interface: schema, registry (built-ins and entry points), estimates, worker processes."""

from __future__ import annotations

import json
import math
import pickle
import textwrap
from pathlib import Path

import pytest
from _gen_helpers import SAMPLE_JOB

pytest.importorskip("cv2", reason="the generators need the [server] extra")

import opsin.synth.server.generators as generators_pkg
from opsin.core import make_executor
from opsin.synth.errors import GeneratorError, ParameterValidationError, UnknownGeneratorError
from opsin.synth.server.generators import Generator, ParamSpec, available_generators, get_generator

BUILTINS = ["visionfit-v0.4.0", "visionfit-flagship-v0.1.0", "shapes-v0.1.0", "test-generator-v0.1.0"]


def test_public_names_are_pinned() -> None:
    assert generators_pkg.__all__ == sorted(generators_pkg.__all__)
    assert generators_pkg.__all__ == [
        "CancelEvent", "ENTRY_POINT_GROUP", "Generator", "ParamSpec", "available_generators", "builtin_generators",
        "generator_registry", "get_generator",
    ]  # fmt: skip


def test_builtins_are_registered() -> None:
    assert [g.name for g in available_generators()][:4] == BUILTINS
    for name in BUILTINS:
        g = get_generator(name)
        assert g.name == name
        assert g.supports_preview
        assert name.endswith("-v" + g.version)


def test_unknown_generator_names_the_alternatives() -> None:
    with pytest.raises(UnknownGeneratorError) as info:
        get_generator("no-such-generator-v9")
    assert isinstance(info.value, KeyError)
    text = str(info.value)
    assert "no-such-generator-v9" in text
    assert all(name in text for name in BUILTINS)


def test_describe_and_parameter_info() -> None:
    g = get_generator("test-generator-v0.1.0")
    desc = g.describe()
    assert desc == {
        "name": "test-generator-v0.1.0",
        "version": "0.1.0",
        "description": desc["description"],
        "options": {"preview": True},
        "params": [
            {"name": "param1", "type": "int", "default_value": 1, "options": {"min": 1, "max": 5},
             "description": desc["params"][0]["description"]},
            {"name": "param2", "type": "float", "default_value": 2.5, "options": {"min": -5.0, "max": 5.0},
             "description": desc["params"][1]["description"]},
            {"name": "param3", "type": "str", "default_value": "CHOICE_1",
             "options": {"choices": ["CHOICE_1", "CHOICE_2"]},
             "description": desc["params"][2]["description"]},
            {"name": "state", "type": "uuid", "default_value": None, "options": None,
             "description": desc["params"][3]["description"]},
        ],
    }  # fmt: skip
    assert json.loads(json.dumps(desc)) == desc
    assert list(g.parameter_info) == ["param1", "param2", "param3", "state"]
    assert g.parameter_info["param2"] == {k: v for k, v in desc["params"][1].items() if k != "name"}


def test_param_spec_rejects_unknown_types() -> None:
    with pytest.raises(ValueError, match="complex"):
        ParamSpec("x", "complex", 0)


def test_visionfit_schemas_match_the_fixture() -> None:
    v040 = get_generator("visionfit-v0.4.0")
    flagship = get_generator("visionfit-flagship-v0.1.0")
    assert len(v040.params) == 28
    assert list(flagship.parameter_info) == [*v040.parameter_info, "randomize_skin_tone", "add_pauses", "add_socks"]
    if SAMPLE_JOB.exists():
        assert list(json.loads((SAMPLE_JOB / "job.json").read_text())["params"]) == list(v040.parameter_info)
    for g in (v040, flagship, get_generator("shapes-v0.1.0")):
        for spec in g.params:
            opts, value = spec.options, spec.default_value
            if opts and "min" in opts:
                assert opts["min"] <= value <= opts["max"], spec.name
            if opts and "choices" in opts:
                assert value in opts["choices"], spec.name
    assert v040.parameter_info["frame_rate"]["options"] == {"choices": [30, 24, 12, 8, 6]}
    assert len(v040.parameter_info["exercise"]["options"]["choices"]) == 35 + 37
    assert v040.parameter_info["state"] == {"type": "uuid", "default_value": None, "options": None,
                                           "description": v040.parameter_info["state"]["description"]}  # fmt: skip


def test_estimate_follows_the_duration_formula() -> None:
    g = get_generator("visionfit-flagship-v0.1.0")
    params = {**g.defaults(), "exercise": "UPPERCUT-LEFT", "num_reps": 4, "inter_rep_delay_avg": 1.8533221548334513,
              "rel_baseline_speed": 0.920864086785049, "frame_rate": 6}  # fmt: skip
    # the real job 1b3f73c9 has these params and 81 frames: D = R (d + T / s) with T = 1.4 s for punches
    assert g.estimate(params, False) == 81 == round(4 * (1.8533221548334513 + 1.4 / 0.920864086785049) * 6)
    if SAMPLE_JOB.exists():
        assert json.loads((SAMPLE_JOB / "timing.json").read_text())["num_frames"] == 81
    assert g.estimate({**params, "add_pauses": True}, False) == round((4 * (1.85332 + 1.4 / 0.920864) + 2.0) * 6)
    squat = {
        **g.defaults(),
        "exercise": "SQUAT-BODYWEIGHT",
        "num_reps": 3,
        "inter_rep_delay_avg": 0.0,
        "frame_rate": 30,
    }
    assert g.estimate(squat, False) == 3 * 75
    assert g.estimate({**squat, "exercise": "HIGH_KNEES_04", "num_reps": 1}, False) == 24
    tiny = {**squat, "exercise": "HIGH_KNEES_04", "num_reps": 1, "rel_baseline_speed": 3.0, "frame_rate": 6}
    assert g.estimate(tiny, False) == max(1, math.floor(0.8 / 3 * 6 + 0.5))
    assert g.estimate(params, True) == 1
    shapes = get_generator("shapes-v0.1.0")
    assert shapes.estimate({**shapes.defaults(), "num_images": 7}, False) == 7
    assert shapes.estimate({**shapes.defaults(), "num_images": 7}, True) == 1


def test_test_generator_renders_param1_frames(tmp_path: Path) -> None:
    g = get_generator("test-generator-v0.1.0")
    params = {**g.defaults(), "param1": 3, "param3": "CHOICE_2"}
    assert g.estimate(params, False) == 3
    assert g.estimate(params, True) == 1
    assert g.run(params, False, 42, tmp_path, None) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.json", "labels.json", "video_preview.png"]
    job = json.loads((tmp_path / "job.json").read_text())
    assert job == {"name": "test-generator-v0.1.0", "params": params}
    assert len(json.loads((tmp_path / "labels.json").read_text())["images"]) == 3
    assert (tmp_path / "video_preview.png").read_bytes().startswith(b"\x89PNG")


def test_generators_run_in_worker_processes(tmp_path: Path) -> None:
    gens = [get_generator("test-generator-v0.1.0"), get_generator("visionfit-flagship-v0.1.0")]
    for g in gens:
        assert pickle.loads(pickle.dumps(g)).describe() == g.describe()
    with make_executor("local", 1) as pool:
        futures = []
        for g in gens:
            out = tmp_path / g.name
            out.mkdir()
            params = {**g.defaults(), **({"image_width": 128, "image_height": 128} if "visionfit" in g.name else {})}
            futures.append((g, out, pool.submit(g.run, params, True, 9, out, None)))
        for g, out, future in futures:
            assert future.result(timeout=120) == 1
            assert (out / "video_preview.png").exists(), g.name
            assert (out / "job.json").exists(), g.name


PLUGIN = """
from opsin.synth.server.generators import Generator, ParamSpec


class EchoGenerator(Generator):
    name = "echo-plugin-v1.0.0"
    version = "1.0.0"
    description = "test plugin"
    supports_preview = False
    params = (ParamSpec("n", "int", 2, {"min": 1, "max": 3}, "frames"),)

    def estimate(self, params, is_preview):
        return int(params["n"])

    def run(self, params, is_preview, seed, out_dir, cancel_event=None):
        (out_dir / "job.json").write_text("{}")
        return int(params["n"])
"""


def test_entry_point_plugins_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "opsin_echo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "opsin_echo_plugin-1.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: opsin-echo-plugin\nVersion: 1.0.0\n")
    (dist / "entry_points.txt").write_text(
        "[opsin.synth.generators]\necho = opsin_echo_plugin:EchoGenerator\n"
        "broken = opsin_echo_plugin:DoesNotExist\nclash = opsin_echo_plugin_clash:X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    names = [g.name for g in available_generators()]
    assert names[:4] == BUILTINS
    assert "echo-plugin-v1.0.0" in names
    plugin = get_generator("echo-plugin-v1.0.0")
    assert isinstance(plugin, Generator)
    assert plugin.describe()["options"] == {"preview": False}
    assert plugin.estimate({"n": 3}, False) == 3


def test_failures_are_generator_errors(tmp_path: Path) -> None:
    g = get_generator("visionfit-v0.4.0")
    missing = tmp_path / "not-created"
    with pytest.raises(GeneratorError, match=r"visionfit-v0\.4\.0 job in .*not-created") as info:
        g.run({**g.defaults(), "image_width": 128, "image_height": 128}, True, 1, missing, None)
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(ParameterValidationError, match="NOT_AN_EXERCISE"):
        g.estimate({**g.defaults(), "exercise": "NOT_AN_EXERCISE"}, False)
    shapes = get_generator("shapes-v0.1.0")
    with pytest.raises(GeneratorError, match=r"shapes-v0\.1\.0"):
        shapes.run({**shapes.defaults(), "ground": "LAVA"}, False, 1, tmp_path, None)
