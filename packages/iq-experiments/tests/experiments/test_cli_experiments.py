"""The experiment commands of ``opsin-iq``: run (TOML), info, runs, plot, demo."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from opsin.iq.cli import main


@pytest.fixture
def cli() -> click.Group:
    return main


def test_run_info_runs_plot(cli, coco_ds, fake_script, tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text(
        f"""
experiment_name = "cli-exp"
script = "{fake_script}"
train_ds = "data/ds_coco_dataset"
workers = 1

[extra_train_params]
lr = [0.1, 0.2]

[[modifiers]]
type = "jpg"
params = {{ quality = [30, 60] }}
"""
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(toml)])
    assert result.exit_code == 0, result.output
    assert "4/4 runs finished" in result.output
    assert result.output.count("ds_coco_dataset#jpg30_modifier ") == 2

    result = runner.invoke(cli, ["info", "cli-exp"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert sorted(r["params_dict"]["quality"] for r in runs.values()) == ["30", "30", "60", "60"]

    result = runner.invoke(cli, ["runs", "cli-exp", "-p", "modifier", "-p", "lr", "-m", "val_f1", "--csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "name,ds_modifier,ds_lr,val_f1"
    assert lines[1] == "ds_coco_dataset#jpg60_modifier,jpg60_modifier,0.2,0.11046221254112044"  # newest first
    assert lines[-1] == "ds_coco_dataset#jpg30_modifier_1,jpg30_modifier,0.1,0.11046221254112044"  # the older one

    png = tmp_path / "out" / "plot.png"
    result = runner.invoke(cli, ["plot", "cli-exp", "-y", "val_rmse", "-l", "ds_lr", "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"

    again = runner.invoke(cli, ["run", str(toml)])  # resumes: nothing left to run
    assert again.exit_code == 0
    assert again.output.count("(already finished)") == 4

    missing = runner.invoke(cli, ["info", "nope"])
    assert missing.exit_code == 4
    assert missing.stderr.startswith("Error: no mlflow experiment named 'nope'")
    assert missing.stderr.count("\n") == 1


def test_bad_experiment_files(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('experiment_name = "x"\nscript = "s.py"\ntrain_ds = "d"\nmodifiers = [{type = "warp"}]\nfoo = 1\n')
    result = CliRunner().invoke(cli, ["run", str(bad)])
    assert result.exit_code == 2
    assert "unknown keys ['foo']" in result.stderr
    assert result.stderr.count("\n") == 1
    bad.write_text('experiment_name = "x"\n')
    result = CliRunner().invoke(cli, ["run", str(bad)])
    assert result.exit_code == 2
    assert "missing ['script', 'train_ds', 'modifiers']" in result.output


@pytest.mark.slow
def test_demo_end_to_end(cli, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out-dir", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    # one line per dataset without edges instead of per-image warnings; a readable table; the UI command
    assert "RuntimeWarning" not in result.output
    assert "Mean of empty slice" not in result.output
    assert " NaN" not in result.stdout
    assert " nan" not in result.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{out.resolve()}" in result.stdout
    assert (out / "demo_val_auc.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert summary["runs"] == ["FINISHED"] * 4
    from opsin.iq.experiments import ExperimentInfo

    df = ExperimentInfo("opsin-iq-demo", tracking_uri=summary["tracking_uri"]).get_df(
        ["modifier"], ["val_auc", "snr_median", "RER_X"], dropna=False
    )
    auc = df.groupby("ds_modifier")["val_auc"].mean()
    assert auc["jpg95_modifier"] > auc["jpg5_modifier"] + 0.1  # strong compression removes the objects' texture
    q95 = df[df["ds_modifier"] == "jpg95_modifier"]
    assert (q95["snr_median"] > 20).all()
    assert q95["RER_X"].between(0.4, 0.7).all()  # the images were blurred with a Gaussian PSF of sigma 0.7 (0.52)
    q5_without_edges = df[df["ds_modifier"] == "jpg5_modifier"]["RER_X"].isna().all()
    assert ("no edge passed" in result.stdout) == q5_without_edges
    assert result.stdout.count("no edge passed") <= 1  # once per dataset, never per image
    for line in result.stdout.splitlines():
        if "not measurable" in line:
            assert line.startswith("jpg5_modifier: ")  # only the strongly compressed dataset lacks values
    from mlflow import MlflowClient

    exp = MlflowClient(summary["tracking_uri"]).get_experiment_by_name("opsin-iq-demo")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the mlflow 3 UI opens on the runs
