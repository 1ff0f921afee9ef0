"""``opsin-iq`` as a user meets it: every command's help, and bad inputs giving one ``Error:`` line and the code."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opsin.core import ExitCode
from opsin.iq.cli import main


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


def test_every_command_has_help_and_the_common_options():
    commands = _commands(main)
    assert {("modify",), ("sanity",), ("stats",), ("snr",), ("sharpness",), ("run",), ("runs",), ("demo",)} <= set(
        commands
    )
    for path in [(), *commands]:
        code, out, err = _invoke([*path, "--help"])
        assert code == 0, (path, err)
        assert out.startswith("Usage:"), path
        for option in ("--log-level", "--debug", "--version"):
            assert option in out, (path, option)
        # one vocabulary: no old spellings of output and parallelism flags
        for old in ("--output ", "--output-path", "--output-root", "--jobs", "--max-workers", "--verbose"):
            assert old not in out, (path, old)
    code, out, _ = _invoke(["--version"])
    assert code == 0
    assert out.startswith("opsin-iq ") or "0.1.0" in out


@pytest.fixture
def bad(tmp_path: Path, datasets: Path) -> dict[str, Path]:
    """Small broken inputs, each next to the path a user would give."""
    text_png = tmp_path / "notes.png"
    text_png.write_text("these are my notes, not a picture\n")
    unreadable = datasets / "unreadable"
    shutil.copytree(datasets / "ds_coco_dataset", unreadable)
    (unreadable / "images" / "zz_notes.png").write_text("not an image")
    text_json = datasets / "text_json"
    shutil.copytree(datasets / "ds_coco_dataset", text_json)
    (text_json / "coco_annotations.json").write_text("plain text, not JSON")
    two_folders = datasets / "two_folders"
    shutil.copytree(datasets / "ds_coco_dataset", two_folders)
    (two_folders / "more_images").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    toml = tmp_path / "broken.toml"  # a misspelt modifier parameter name
    toml.write_text(
        f'experiment_name = "x"\nscript = "example:objectness"\ntrain_ds = "{datasets / "ds_coco_dataset"}"\n'
        '[[modifiers]]\ntype = "jpg"\nparams = { qualty = 50 }\n'
    )
    return {
        "coco": datasets / "ds_coco_dataset",
        "text_png": text_png,
        "unreadable": unreadable,
        "text_json": text_json,
        "two_folders": two_folders,
        "empty": empty,
        "toml": toml,
        "missing": tmp_path / "does-not-exist",
    }


# (arguments with {placeholders}, exit code, text the one line must contain)
CASES = [
    (["snr", "{text_png}"], ExitCode.USAGE, "notes.png"),  # a text file named .png: ImageReadError
    (["sharpness", "{text_png}", "--workers", "1"], ExitCode.USAGE, "notes.png"),
    (["snr", "{unreadable}"], ExitCode.USAGE, "zz_notes.png"),
    (["stats", "{unreadable}"], ExitCode.USAGE, "zz_notes.png"),
    (["sanity", "{text_json}"], ExitCode.USAGE, "coco_annotations.json"),  # AnnotationFormatError
    (["stats", "{text_json}"], ExitCode.USAGE, "coco_annotations.json"),
    (["modify", "{two_folders}", "-m", "jpg"], ExitCode.USAGE, "more_images"),  # DSLayoutError
    (["snr", "{two_folders}"], ExitCode.USAGE, "more_images"),
    (["snr", "{empty}"], ExitCode.USAGE, "empty"),
    (["sharpness", "{empty}"], ExitCode.USAGE, "empty"),
    (["stats", "{empty}"], ExitCode.USAGE, "empty"),
    (["modify", "{empty}", "-m", "jpg"], ExitCode.USAGE, "empty"),
    (["snr", "{missing}"], ExitCode.NOT_FOUND, "does-not-exist"),
    (["modify", "{missing}", "-m", "jpg"], ExitCode.NOT_FOUND, "does-not-exist"),
    (["sharpness", "{coco}", "--edge-length", "-3"], ExitCode.USAGE, "--edge-length"),
    (["modify", "{coco}", "-m", "jpg", "--workers", "0"], ExitCode.USAGE, "--workers"),
    (["sharpness", "{coco}", "--workers", "0"], ExitCode.USAGE, "--workers"),
    (["modify", "{coco}", "-m", "jpg", "-p", "qualty=50"], ExitCode.USAGE, "qualty"),
    (["modify", "{coco}", "-m", "jpg", "-p", "quality=500"], ExitCode.USAGE, "quality"),
    (["modify", "{coco}", "-m", "jpg", "-p", "quality"], ExitCode.USAGE, "KEY=VALUE"),
    (["modify", "{coco}", "-m", "warp"], ExitCode.USAGE, "warp"),
    (["run", "{toml}"], ExitCode.USAGE, "qualty"),
    (["run", "{missing}"], ExitCode.NOT_FOUND, "does-not-exist"),
    (["demo", "--workers", "0"], ExitCode.USAGE, "--workers"),
    (["snr", "{coco}", "--log-level", "LOUD"], ExitCode.USAGE, "--log-level"),
]


@pytest.mark.parametrize(("args", "code", "needle"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_gives_one_line_and_the_documented_code(bad, args, code, needle):
    argv = [a.format(**{k: str(v) for k, v in bad.items()}) for a in args]
    got, _out, err = _invoke(argv)
    assert got == code, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert needle in lines[0], err
    assert "Traceback" not in err


def test_modify_writes_nothing_for_a_misspelt_parameter(datasets):
    code, _, _ = _invoke(["modify", str(datasets / "ds_coco_dataset"), "-m", "jpg", "-p", "qualty=50"])
    assert code == ExitCode.USAGE
    assert not any("#" in p.name for p in datasets.iterdir())  # no copy under the default quality


def test_an_unreachable_tracking_server_fails_within_seconds():
    import mlflow  # noqa: F401 - imports are not what is timed

    import opsin.iq.experiments._info  # noqa: F401

    start = time.monotonic()
    code, _, err = _invoke(["runs", "anything", "--tracking-uri", "http://127.0.0.1:1"])
    assert time.monotonic() - start < 10
    assert code == ExitCode.ERROR
    assert err.count("\n") == 1
    assert "http://127.0.0.1:1" in err
    assert "not reachable" in err


@pytest.fixture
def _restore_mlflow_uris():
    """``ExperimentSetup`` sets mlflow's process-wide URIs (as the original did); put them back afterwards."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    yield
    tracking_utils._tracking_uri, registry_utils._registry_uri = saved


@pytest.mark.usefixtures("_restore_mlflow_uris")
def test_run_against_an_unreachable_tracking_server_fails_before_any_run(datasets, tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text(
        f'experiment_name = "x"\nscript = "example:objectness"\ntrain_ds = "{datasets / "ds_coco_dataset"}"\n'
        '[[modifiers]]\ntype = "jpg"\nparams = { quality = 50 }\n'
    )
    code, _, err = _invoke(["run", str(toml), "--tracking-uri", "http://127.0.0.1:1"])
    assert code == ExitCode.ERROR
    assert err.count("\n") == 1
    assert "http://127.0.0.1:1" in err
    assert not (datasets / "ds_coco_dataset#jpg50_modifier").exists()  # nothing was built or run


def test_snr_and_sharpness_measure_a_job_folder_the_way_dswrapper_reads_it(datasets, tmp_path):
    # a synth shapes job folder: images/ plus sidecar files and a top-level preview image
    job = datasets / "ds_coco_dataset"
    shutil.copy(next((job / "images").iterdir()), job / "video_preview.png")
    (job / "job.json").write_text('{"name": "shapes"}')
    code, out, err = _invoke(["snr", str(job)])
    assert code == 0, err
    assert json.loads(out)["n_images"] == 10  # the dataset's images, not the preview
    code, out, err = _invoke(["sharpness", str(job), "--workers", "1", "--out", str(tmp_path / "s.json")])
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["n_images"] == 10
    code, out, err = _invoke(["snr", str(job / "images")])  # the image folder itself works too
    assert json.loads(out)["n_images"] == 10
