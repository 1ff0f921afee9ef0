"""Training side of opsin-event-flow: the cost of a training step, and a CPU training that learns.

1. Step time and peak memory of one training step (forward, the six losses, backward, Adam) of eminet base 16 at
   240x320 with T=5 bins and B=4 samples of event_cube features, on the CPU.
2. Training that learns: synthetic 320x240 recordings with exact flow (50 ms windows) are simulated and trained on
   with the shipped config (self-supervised, or on the labels with ``--supervised``) for at most ``--minutes`` of
   wall time (30 by default); the last checkpoint is scored on a test set simulated with another seed, event-masked
   and dense, next to the zero-flow baseline and OpenCV Farneback on the same pixels. The model must be clearly
   below zero flow.

Run from the repository root: ``python packages/event-flow/benchmarks/bench_train.py [--quick] [--minutes N]``.
``--quick`` uses fewer and shorter recordings and a 3-minute training (a smoke run, not a result).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import resource
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml

from opsin.eventflow._evaluate import EvaluateOptions, run_evaluate
from opsin.eventflow._lightning_cli import run_lightning_cli
from opsin.eventflow.lightning_model import FlowModel
from opsin.eventflow.synthetic import make_dataset

H, W = 240, 320
DELTA_T = 50_000


def peak_rss_mib() -> float:
    """The peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_benchmark(repeat: int) -> dict[str, float]:
    """Median wall time of a full training step and the peak memory it adds, eminet base 16, T=5, B=4, 240x320."""
    torch.manual_seed(0)
    n_t, batch = 5, 4
    model = FlowModel(
        delta_t=DELTA_T,
        array_dim=(n_t, 6, H, W),
        network_kwargs={"base": 16, "scales": 3, "rnn_cell": "lstm", "separable": True},
        learning_rate=3e-4,
    )
    optimizer = model.configure_optimizers()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((n_t, batch, 6, H, W), generator=gen) * (torch.rand((n_t, batch, 1, H, W), generator=gen) < 0.1)
    baseline = peak_rss_mib()
    times = []
    for _ in range(repeat + 1):  # the first step allocates the state and warms the allocator
        t0 = time.perf_counter()
        losses = model.compute_loss(x)
        loss = torch.stack(list(losses.values())).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    return {
        "step_s": times[len(times) // 2],
        "peak_rss_mib": peak_rss_mib(),
        "step_peak_increase_mib": peak_rss_mib() - baseline,
        "params": float(sum(p.numel() for p in model.parameters())),
        "threads": float(torch.get_num_threads()),
    }


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        return fn(*args, **kwargs)


def training_benchmark(work: Path, quick: bool, minutes: float, supervised: bool = False) -> dict[str, Any]:
    """Simulates, trains for at most ``minutes`` and evaluates; returns timings and both evaluation reports.

    The training streams the DAT recordings (features computed on the fly, labels found beside them); with
    ``supervised`` it trains on the exact synthetic labels instead of the self-supervised losses.
    """
    n_train, n_test = (5, 3) if quick else (25, 6)
    duration = 1_000_000 if quick else 2_000_000
    t0 = time.perf_counter()
    make_dataset(work / "train_raw", n_train, H, W, duration, DELTA_T, seed=1, show_progress=True)
    make_dataset(work / "test_raw", n_test, H, W, duration, DELTA_T, seed=2, show_progress=True)
    synth_s = time.perf_counter() - t0
    config = yaml.safe_load((resources.files("opsin.eventflow") / "configs" / "flow.yaml").read_text())
    config["model"].update({"array_dim": [4, 6, H, W], "learning_rate": 1e-3})
    config["data"].update({"num_workers": 1, "train_labels": supervised})
    config["trainer"].update(
        {
            "accumulate_grad_batches": 1,  # few steps fit in the budget: update at every one
            "max_time": {"seconds": int(minutes * 60)},
            "limit_val_batches": 0,
            "enable_progress_bar": False,
            "default_root_dir": str(work / "runs"),
        }
    )
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("FlowCallback"):
            callback["init_args"]["video_result_every_n_epochs"] = 0
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    t0 = time.perf_counter()
    run_lightning_cli("fit", ["--config", str(work / "bench.yaml"), "--data.data_dir", str(work / "train_raw")])
    train_s = time.perf_counter() - t0
    ckpt = work / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    reports = {}
    for name, dense in (("events", False), ("dense", True)):
        per_split = []
        for split in ("train", "val", "test"):  # every recording of the test seed is a test recording
            options = EvaluateOptions(dense=dense, farneback=True)
            folder = work / "test_raw" / split
            if any(folder.glob("*_flow.h5")):
                per_split.append(_quiet(run_evaluate, str(ckpt), None, None, str(folder), options))
        reports[name] = _pool(per_split)
    return {
        "synth_s": synth_s,
        "supervised": supervised,
        "train_s": train_s,
        "epochs": int(state["epoch"]) + 1,
        "steps": int(state["global_step"]),
        "n_train": n_train,
        "n_test": n_test,
        "duration_s": duration / 1e6,
        "reports": reports,
    }


def _pool(reports: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Frame-weighted means over several evaluate reports (each mean is over its own valid frames)."""
    out: dict[str, dict[str, float]] = {}
    for method in ("model", "farneback"):
        frames = sum(r["mean"][method]["frames"] for r in reports)
        pooled: dict[str, float] = {"frames": frames}
        for key in ("aee", "outlier_pct", "outlier_or_pct", "zero_flow_aee", "zero_flow_outlier_pct"):
            total = sum(r["mean"][method][key] * r["mean"][method]["frames"] for r in reports)
            pooled[key] = total / frames if frames else math.nan
        out[method] = pooled
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small data, 3-minute training (a smoke run)")
    parser.add_argument("--minutes", type=float, default=None, help="training wall-time limit (default 30)")
    parser.add_argument("--work-dir", default=None, help="keep data and runs here (default: a temporary folder)")
    parser.add_argument("--skip-training", action="store_true", help="only the step benchmark")
    parser.add_argument("--supervised", action="store_true", help="train on the synthetic labels (default: self-sup.)")
    args, _ = parser.parse_known_args()
    minutes = args.minutes if args.minutes is not None else (3.0 if args.quick else 30.0)

    step = step_benchmark(repeat=2 if args.quick else 5)
    print("\n### opsin-event-flow training step (CPU, eminet base 16, 240x320, T=5, B=4, event_cube)\n")
    print("| parameters | torch threads | step time (s) | steps/min | peak RSS (MiB) | step peak increase (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {int(step['params']):,} | {int(step['threads'])} | {step['step_s']:.2f} | {60 / step['step_s']:.1f} | "
        f"{step['peak_rss_mib']:,.0f} | {step['step_peak_increase_mib']:,.0f} |"
    )
    if args.skip_training:
        return
    with tempfile.TemporaryDirectory(prefix="opsin-bench-train-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = training_benchmark(work, args.quick, minutes, args.supervised)
    r = result["reports"]
    print(
        f"\n### opsin-event-flow training that learns ({result['n_train']} synthetic {W}x{H} recordings of "
        f"{result['duration_s']:.0f} s, 50 ms windows; {result['steps']} steps in {result['epochs']} epochs, "
        f"{result['train_s'] / 60:.1f} min of {'supervised' if result['supervised'] else 'self-supervised'} CPU "
        f"training; test: {result['n_test']} recordings of another seed"
        f"{'; quick' if args.quick else ''})\n"
    )
    print("| method | AEE (event px) | %Out AND (event px) | %Out OR (event px) | AEE (dense) | %Out AND (dense) |")
    print("|---|---:|---:|---:|---:|---:|")
    ev, de = r["events"], r["dense"]
    rows = [
        ("model", ev["model"]["aee"], ev["model"]["outlier_pct"], ev["model"]["outlier_or_pct"],
         de["model"]["aee"], de["model"]["outlier_pct"]),
        ("zero flow", ev["model"]["zero_flow_aee"], ev["model"]["zero_flow_outlier_pct"], math.nan,
         de["model"]["zero_flow_aee"], de["model"]["zero_flow_outlier_pct"]),
        ("Farneback (event images)", ev["farneback"]["aee"], ev["farneback"]["outlier_pct"],
         ev["farneback"]["outlier_or_pct"], de["farneback"]["aee"], de["farneback"]["outlier_pct"]),
    ]  # fmt: skip
    for name, *values in rows:
        print(f"| {name} | " + " | ".join("-" if math.isnan(v) else f"{v:.3f}" for v in values) + " |")
    ratio = ev["model"]["aee"] / ev["model"]["zero_flow_aee"]
    print(
        f"\nmodel / zero-flow AEE (event pixels): {ratio:.2f}; model / Farneback: "
        f"{ev['model']['aee'] / ev['farneback']['aee']:.2f}. Timings: synth {result['synth_s']:.0f} s, "
        f"training {result['train_s']:.0f} s."
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
