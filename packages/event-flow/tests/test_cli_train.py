"""The training side of ``opsin-eventflow``: fit/validate/test (LightningCLI), resume, evaluate, export, bad input."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
import yaml
from _cli_run import run

from opsin.eventflow.export import INFO_NAME, MODEL_NAME
from opsin.eventflow.lightning_model import FlowModel

TINY_CONFIG = {
    "seed_everything": 7,
    "model": {
        "delta_t": 10_000,
        "learning_rate": 1e-3,
        "array_dim": [2, 6, 32, 32],
        "network_kwargs": {"base": 4, "scales": 2, "rnn_cell": "lstm", "separable": True},
    },
    "data": {"batch_size": 2, "num_workers": 0, "data_aug": False},
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "precision": "32-true",
        "limit_train_batches": 2,
        "limit_val_batches": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
        "callbacks": [
            {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}},
            {
                "class_path": "opsin.eventflow.callbacks.FlowCallback",
                "init_args": {"curriculum_param": 4.0, "video_result_every_n_epochs": 0},
            },
        ],
    },
}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, err
    assert not any("Traceback" in line for line in err.splitlines()), err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_CONFIG))
    return path


@pytest.fixture(scope="module")
def trained(flow_dataset, tiny_config, tmp_path_factory):
    """A two-epoch run of the tiny config (epochs 0 and 1) and its last checkpoint."""
    root = tmp_path_factory.mktemp("run")
    args = ["fit", "--config", str(tiny_config), "--data.data_dir", str(flow_dataset)]
    code, _, err = run([*args, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "2"])
    assert code == 0, err
    return root


def _metrics(version_dir) -> list[dict[str, str]]:
    with open(version_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_fit_writes_checkpoints_config_and_metrics(trained):
    version = trained / "lightning_logs" / "version_0"
    names = sorted(p.name for p in (version / "checkpoints").iterdir())
    assert "last.ckpt" in names
    assert any(n.startswith("epoch=1-") for n in names)
    saved = yaml.safe_load((version / "config.yaml").read_text())
    # The model's data-shaping arguments reach the data module through the links.
    assert saved["model"]["array_dim"] == [2, 6, 32, 32]
    assert saved["model"]["delta_t"] == 10_000
    rows = _metrics(version)
    curriculum = [float(r["curriculum/max_consecutive_batch"]) for r in rows if r["curriculum/max_consecutive_batch"]]
    assert curriculum == [1.0, 1.0]
    aee = [float(r["val/aee"]) for r in rows if r.get("val/aee")]
    assert aee
    assert all(0 <= v < 20 for v in aee)
    model = FlowModel.load_from_checkpoint(version / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.hparams.array_dim == [2, 6, 32, 32]


def test_resume_from_last_continues_the_curriculum(trained, flow_dataset, tiny_config, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(trained, root)
    args = ["fit", "--config", str(tiny_config), "--data.data_dir", str(flow_dataset), "--ckpt_path", "last"]
    code, _, err = run([*args, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "3"])
    assert code == 0, err
    version = root / "lightning_logs" / "version_1"
    rows = _metrics(version)
    assert {r["epoch"] for r in rows if r["epoch"]} == {"2"}  # epochs 0 and 1 came from the checkpoint
    curriculum = [float(r["curriculum/max_consecutive_batch"]) for r in rows if r["curriculum/max_consecutive_batch"]]
    assert curriculum == [4.0]  # p = 4 at epoch 2: int(4 ** 1)
    assert (version / "checkpoints" / "epoch=2-step=6.ckpt").exists()  # the global step continued from 4


@pytest.fixture(scope="module")
def last_ckpt(trained):
    return trained / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


def test_fit_from_a_weights_only_checkpoint_fine_tunes_from_its_weights(last_ckpt, flow_dataset, tiny_config, tmp_path):
    # A shipped model has no optimizer state: fit must start from its weights at epoch 0 (Lightning alone refuses).
    full = torch.load(last_ckpt, map_location="cpu", weights_only=False)
    slim = tmp_path / "weights.ckpt"
    torch.save({key: full[key] for key in ("state_dict", "hyper_parameters")}, slim)
    root = tmp_path / "run"
    args = ["fit", "--config", str(tiny_config), "--data.data_dir", str(flow_dataset), "--ckpt_path", str(slim)]
    # Learning rate 0 (from the command line: it must win over the checkpoint's 1e-3) keeps the weights unchanged.
    args += ["--model.learning_rate", "0.0", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root)]
    code, _, err = run(args)
    assert code == 0, err
    tuned = root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    after = torch.load(tuned, map_location="cpu", weights_only=False)
    assert after["epoch"] == 0
    assert after["hyper_parameters"]["learning_rate"] == 0.0
    params = {name for name, _ in FlowModel.load_from_checkpoint(tuned, map_location="cpu").named_parameters()}
    for name in params:  # without the weights, these would be the seed's fresh initialisation
        torch.testing.assert_close(after["state_dict"][name], full["state_dict"][name])


def test_fit_from_weights_of_another_architecture_is_one_line(last_ckpt, flow_dataset, tiny_config, tmp_path):
    full = torch.load(last_ckpt, map_location="cpu", weights_only=False)
    hparams = dict(full["hyper_parameters"])
    hparams["network_kwargs"] = {**hparams["network_kwargs"], "base": 8}  # claims base 8, holds base-4 weights
    slim = tmp_path / "mismatch.ckpt"
    torch.save({"state_dict": full["state_dict"], "hyper_parameters": hparams}, slim)
    args = ["fit", "--config", str(tiny_config), "--data.data_dir", str(flow_dataset), "--ckpt_path", str(slim)]
    code, _, err = run([*args, "--trainer.default_root_dir", str(tmp_path / "run")])
    assert code != 0
    line = one_error_line(err)
    assert "mismatch.ckpt" in line
    assert "do not fit" in line


def test_validate_and_test_report_metrics(last_ckpt, flow_dataset, tiny_config, tmp_path):
    base = ["--config", str(tiny_config), "--data.data_dir", str(flow_dataset), "--ckpt_path", str(last_ckpt)]
    base += ["--trainer.default_root_dir", str(tmp_path)]
    for sub, mode in (("validate", "val"), ("test", "test")):
        code, out, err = run([sub, *base, "--data.test_data_dir", str(flow_dataset / "test")])
        assert code == 0, err
        assert f"{mode}/aee" in out
        assert f"{mode}/outlier_or_pct" in out


def test_evaluate_prints_the_table_and_writes_json(last_ckpt, flow_dataset, tmp_path):
    out_json = tmp_path / "eval.json"
    args = ["evaluate", "--ckpt", str(last_ckpt), "--dir", str(flow_dataset / "test"), "--json", str(out_json)]
    code, out, err = run([*args, "--farneback"])
    assert code == 0, err
    for needle in ("seq_0003_td.dat", "mean", "%Out AND", "%Out OR", "zero-flow AEE", "Farneback", "zero flow"):
        assert needle in out
    report = json.loads(out_json.read_text())
    model = report["mean"]["model"]
    assert model["frames"] > 0
    assert model["valid_px"] > 0
    assert 0 <= model["aee"] < 20
    assert model["zero_flow_aee"] > 0  # the synthetic scenes move
    assert 0 <= report["mean"]["farneback"]["aee"] < 20
    # One recording given as --events/--gt, dense: at least as many valid pixels as event-masked.
    events = flow_dataset / "test" / "seq_0003_td.dat"
    gt = flow_dataset / "test" / "seq_0003_flow.h5"
    dense_json = tmp_path / "dense.json"
    one = ["evaluate", "--ckpt", str(last_ckpt), "--events", str(events), "--gt", str(gt)]
    code, _, err = run([*one, "--dense", "--json", str(dense_json)])
    assert code == 0, err
    assert json.loads(dense_json.read_text())["mean"]["model"]["valid_px"] > model["valid_px"]
    # No GT frame inside the time range: exit 2 with one error line.
    code, _, err = run([*args, "--time-range", "0,1"])
    assert code == 2
    assert "no ground-truth frame" in one_error_line(err)


def test_streaming_evaluate_with_a_time_range_scores_like_the_in_memory_reference(last_ckpt, flow_dataset, tmp_path):
    import numpy as np

    from opsin.eventflow._infer import iter_flow
    from opsin.eventflow._predictor import load_predictor
    from opsin.eventflow.io import open_events, read_flow_labels
    from opsin.eventflow.metrics import evaluate_flow_sequence, farneback_flows

    events = flow_dataset / "test" / "seq_0003_td.dat"
    gt = flow_dataset / "test" / "seq_0003_flow.h5"
    span = (95_000, 185_000)
    out_json = tmp_path / "range.json"
    args = ["evaluate", "--ckpt", str(last_ckpt), "--events", str(events), "--gt", str(gt)]
    code, _, err = run([*args, "--time-range", f"{span[0]},{span[1]}", "--farneback", "--json", str(out_json)])
    assert code == 0, err
    report = json.loads(out_json.read_text())["mean"]
    got = report["model"]
    # the reference keeps every frame and event in memory and applies the range only while scoring
    predictor = load_predictor(ckpt=last_ckpt)
    with open_events(events) as reader:
        windows = list(iter_flow(predictor, reader, time_range=span))
        everything = reader.read_range(None, None)
        sensor = (reader.height, reader.width)
    labels = read_flow_labels(gt)
    flows = np.stack([w.flow for w in windows])
    starts = np.asarray([w.start_ts for w in windows])
    delta_t = int(predictor.info.delta_t)
    kwargs = {"events": everything, "sensor_shape": sensor, "time_range": span}
    expected = evaluate_flow_sequence(flows, starts, delta_t, labels, **kwargs).compute()
    assert got["frames"] == expected["n_frames"] == 8  # the 10 ms GT frames inside [95 ms, 185 ms): 100-170 ms
    assert got["valid_px"] == expected["n_valid_px"] > 0
    assert got["aee"] == pytest.approx(expected["aee"], rel=1e-9)
    assert got["outlier_pct"] == pytest.approx(expected["outlier_pct"], rel=1e-9, abs=1e-12)
    # Farneback streamed window by window equals Farneback on the whole event array, on the model's windows
    fb_flows, fb_starts = farneback_flows(everything, delta_t, *sensor, t_start=int(starts[0]), num_windows=len(starts))
    fb_expected = evaluate_flow_sequence(fb_flows, fb_starts, delta_t, labels, **kwargs).compute()
    assert report["farneback"]["frames"] == fb_expected["n_frames"] == 8
    assert report["farneback"]["aee"] == pytest.approx(fb_expected["aee"], rel=1e-9)
    assert report["farneback"]["aee"] != pytest.approx(got["aee"])  # two methods, two scores
    window = read_flow_labels(gt, time_range=span)
    assert window.start_ts.tolist() == list(range(100_000, 170_000 + 1, 10_000))
    np.testing.assert_array_equal(window.flow, labels.flow[10:18])


def test_export_writes_a_scripted_network_equal_to_eager(last_ckpt, tmp_path):
    code, out, err = run(["export", "--ckpt", str(last_ckpt), "--out-dir", str(tmp_path / "jit")])
    assert code == 0, err
    assert MODEL_NAME in out
    info = json.loads((tmp_path / "jit" / INFO_NAME).read_text())
    for key in ("delta_t", "array_dim", "loss_weights", "feature_extractor_name", "network_kwargs", "cin", "height",
                "width", "num_tbins", "preprocess", "preprocess_kwargs"):  # fmt: skip
        assert key in info
    assert info["array_dim"] == [2, 6, 32, 32]
    assert info["network_kwargs"]["scales"] == 2
    scripted = torch.jit.load(str(tmp_path / "jit" / MODEL_NAME))
    model = FlowModel.load_from_checkpoint(last_ckpt, map_location="cpu").eval()
    x = torch.rand(3, 1, 6, 32, 32) * (torch.rand(3, 1, 1, 32, 32) < 0.3)
    scripted.reset_all()
    with torch.no_grad():
        expected = model(x)
        got = scripted(x)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def bad_inputs(flow_dataset, trained, tmp_path_factory):
    """Files for the bad-input table: a corrupt and a truncated feature file, a checkpoint of another architecture."""
    import h5py

    root = tmp_path_factory.mktemp("bad")
    for name, content in (("corrupt", b"\x89HDF\r\n" + b"\x00" * 500), ("empty", None)):
        (root / name / "train").mkdir(parents=True)
        (root / name / "val").mkdir()
        shutil.copy(flow_dataset / "val" / "seq_0002_td.dat", root / name / "val")
        if content is not None:
            (root / name / "train" / "feat.h5").write_bytes(content)
    (root / "truncated" / "train").mkdir(parents=True)
    shutil.copytree(root / "corrupt" / "val", root / "truncated" / "val")
    precompute = ["precompute", str(flow_dataset / "train"), "--out-dir", str(root / "feat"), "--delta-t", "10000"]
    code, _, err = run(precompute)
    assert code == 0, err
    whole = (root / "feat" / "seq_0000.h5").read_bytes()
    (root / "truncated" / "train" / "seq_0000.h5").write_bytes(whole[: len(whole) // 2])
    with h5py.File(root / "feat" / "seq_0000.h5") as fh:
        assert fh["data"].shape[1:] == (6, 32, 32)
    last = trained / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    ckpt["hyper_parameters"]["feature_extractor_name"] = "midinet"  # weights of eminet, hparams of midinet
    torch.save(ckpt, root / "other_arch.ckpt")
    (root / "text.ckpt").write_text("not a checkpoint")
    return root


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["fit", "--config", "nope"], 4, "nope"),
        (["fit", "--config", "{cfg}", "--trainer.max_epochs", "abc"], 2, "max_epochs"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{data}", "--model.delta_t", "0"], 2, "delta_t"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{data}", "--model.array_dim", "[2,6,31,32]"], 2, "31"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{bad}/corrupt"], 2, "feat.h5"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{bad}/truncated"], 2, "seq_0000.h5"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{bad}/empty"], 2, "no train recordings"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{data}", "--data.batch_size", "64"], 2, "no batch"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{data}", "--model.array_dim", "[2,6,64,64]"], 2, "_td.dat"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{data}", "--ckpt_path", "{bad}/missing.ckpt"], 4, "missing"),
        (["fit", "--config", "{cfg}", "--data.data_dir", "{data}", "--ckpt_path", "{bad}/text.ckpt"], 2, "text.ckpt"),
        (["test", "--config", "{cfg}", "--data.data_dir", "{data}", "--ckpt_path", "{bad}/missing.ckpt"], 4, "missing"),
        (["evaluate", "--ckpt", "{bad}/other_arch.ckpt", "--dir", "{data}/test"], 2, "other_arch.ckpt"),
        (["evaluate", "--ckpt", "{bad}/text.ckpt", "--dir", "{data}/test"], 2, "text.ckpt"),
        (["evaluate", "--ckpt", "{bad}/missing.ckpt", "--dir", "{data}/test"], 4, "missing.ckpt"),
        (["evaluate", "--ckpt", "{ckpt}", "--dir", "{bad}/empty/train"], 4, "no event file"),
        (["evaluate", "--ckpt", "{ckpt}", "--dir", "{data}/test", "--crop", "1,2"], 2, "--crop"),
        (["evaluate", "--ckpt", "{ckpt}", "--events", "{data}/test/seq_0003_td.dat"], 2, "--gt"),
        (["evaluate", "--ckpt", "{ckpt}", "--events", "{bad}/nope_td.dat", "--gt", "{bad}/nope.h5"], 4, "nope_td.dat"),
        (["export", "--ckpt", "{bad}/other_arch.ckpt", "--out-dir", "{bad}/x"], 2, "other_arch.ckpt"),
    ],
)
def test_bad_input_prints_one_error_line(args, code, needle, bad_inputs, flow_dataset, tiny_config, last_ckpt):
    args = [a.format(cfg=tiny_config, data=flow_dataset, bad=bad_inputs, ckpt=last_ckpt) for a in args]
    if args[0] == "fit":
        args += ["--trainer.default_root_dir", str(bad_inputs / "runs"), "--trainer.max_epochs", "1"]
    got, _, err = run(args)
    line = one_error_line(err)
    assert got == code, err
    assert needle in line


@pytest.mark.slow
def test_cli_chain_synth_precompute_fit_evaluate(tmp_path):
    raw, feats, runs = tmp_path / "raw", tmp_path / "features", tmp_path / "runs"
    synth = ["synth", "--out-dir", str(raw), "--num-sequences", "3", "--height", "64", "--width", "64"]
    code, _, err = run([*synth, "--duration-us", "200000", "--delta-t", "10000", "--seed", "11"])
    assert code == 0, err
    code, _, err = run(["precompute", str(raw), "--out-dir", str(feats), "--delta-t", "10000"])
    assert code == 0, err
    fit = ["fit", "--config", "demo", "--data.data_dir", str(feats), "--data.test_data_dir", str(raw / "test")]
    code, _, err = run([*fit, "--trainer.default_root_dir", str(runs), "--trainer.enable_progress_bar", "false"])
    assert code == 0, err
    version = runs / "lightning_logs" / "version_0"
    assert (version / "checkpoints" / "last.ckpt").exists()
    assert any(p.name.startswith("epoch=1-") for p in (version / "checkpoints").iterdir())
    assert (version / "videos" / "video#1.mp4").stat().st_size > 0  # FlowCallback's demo video after epoch 2
    out_json = tmp_path / "eval.json"
    ckpt = version / "checkpoints" / "last.ckpt"
    code, out, err = run(["evaluate", "--ckpt", str(ckpt), "--dir", str(raw / "test"), "--json", str(out_json)])
    assert code == 0, err
    assert "mean" in out
    model = json.loads(out_json.read_text())["mean"]["model"]
    assert model["frames"] > 0
    assert 0 <= model["aee"] < 20
