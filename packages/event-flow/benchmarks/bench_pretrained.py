"""Accuracy and speed of the pretrained model shipped in opsin-event-flow, next to its anchors in the same run.

A synthetic test set is made with seeds the training data never used (320x240, 50 ms windows, clean and noisy
sensors); the shipped model, the zero-flow baseline and OpenCV Farneback (on event-count images) are scored on the
same recordings: event-masked and dense AEE and %Out (AND rule). Then the inference throughput on CPU (events/s,
end to end: decoding, features, network, writing). Prints markdown tables.

Run from the repository root: ``python packages/event-flow/benchmarks/bench_pretrained.py [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from opsin.eventflow import pretrained
from opsin.eventflow.inference import infer_file, iter_flow, load_predictor
from opsin.eventflow.io import open_events, read_flow_labels
from opsin.eventflow.metrics import FlowMetricAccumulator, evaluate_flow_sequence, farneback_flows
from opsin.eventflow.synthetic import make_dataset

H, W, DT = 240, 320, 50_000
# Training used seeds 1001-1004 (scripts/make_pretrain_data.py); these are different.
TEST_BLOCKS = [("clean", 200.0, 90_001), ("noisy", 200.0, 90_002)]


def make_test_set(root: Path, per_block: int, duration_us: int) -> list[tuple[Path, Path]]:
    pairs = []
    for preset, speed, seed in TEST_BLOCKS:
        metas = make_dataset(root / preset, per_block, H, W, duration_us, DT, preset=preset, seed=seed, max_speed=speed)
        for meta in metas:
            folder = root / preset / meta["split"]
            pairs.append((folder / meta["events"], folder / meta["flow"]))
    return pairs


def score(pairs: list[tuple[Path, Path]], ckpt: Path | None) -> dict[str, dict[str, FlowMetricAccumulator]]:
    predictor = load_predictor(ckpt)
    accs = {mode: {name: FlowMetricAccumulator() for name in ("model", "farneback")} for mode in ("masked", "dense")}
    for events_path, gt_path in pairs:
        labels = read_flow_labels(gt_path)
        with open_events(events_path) as reader:
            windows = list(iter_flow(predictor, reader))
            events = reader.load_all()
        flows = np.stack([w.flow for w in windows])
        starts = np.asarray([w.start_ts for w in windows], dtype=np.int64)
        fb_flows, fb_starts = farneback_flows(events, DT, H, W, t_start=0)
        for mode in ("masked", "dense"):
            common = {"events": events, "sensor_shape": (H, W), "dense": mode == "dense"}
            evaluate_flow_sequence(flows, starts, DT, labels, accumulator=accs[mode]["model"], **common)
            evaluate_flow_sequence(fb_flows, fb_starts, DT, labels, accumulator=accs[mode]["farneback"], **common)
    return accs


def accuracy_table(accs: dict[str, dict[str, FlowMetricAccumulator]]) -> str:
    rows = ["| method | masked AEE | masked %Out | dense AEE | dense %Out |", "|---|---|---|---|---|"]
    masked = {name: acc.compute() for name, acc in accs["masked"].items()}
    dense = {name: acc.compute() for name, acc in accs["dense"].items()}
    rows.append(
        f"| zero flow | {masked['model']['zero_flow_aee']:.3f} | {masked['model']['zero_flow_outlier_pct']:.1f} "
        f"| {dense['model']['zero_flow_aee']:.3f} | {dense['model']['zero_flow_outlier_pct']:.1f} |"
    )
    for name, label in (
        ("farneback", "OpenCV Farneback (event images)"),
        ("model", f"pretrained {pretrained.DEFAULT}"),
    ):
        rows.append(
            f"| {label} | {masked[name]['aee']:.3f} | {masked[name]['outlier_pct']:.1f} "
            f"| {dense[name]['aee']:.3f} | {dense[name]['outlier_pct']:.1f} |"
        )
    ratio = masked["model"]["aee"] / masked["farneback"]["aee"]
    rows.append("")
    rows.append(
        f"masked AEE of the model / Farneback = {ratio:.2f} (target <= 0.70); "
        f"frames {masked['model']['n_frames']:.0f}, valid px {masked['model']['n_valid_px']:.0f}"
    )
    return "\n".join(rows)


def speed_table(pairs: list[tuple[Path, Path]], out_dir: Path, ckpt: Path | None) -> str:
    predictor = load_predictor(ckpt)
    rows = ["| what | value |", "|---|---|"]
    result = infer_file(predictor, pairs[0][0], out_dir / "speed_flow.h5", show_progress=False)
    rows.append(
        f"| infer end to end, {W}x{H}, {result.windows} windows | {result.events_per_second / 1e6:.2f} M events/s |"
    )
    rows.append(f"| infer end to end | {result.windows / result.seconds:.1f} windows/s |")
    x = torch.zeros(6, H, W).numpy()
    predictor.predict(x)
    began = time.perf_counter()
    repeat = 10
    for _ in range(repeat):
        predictor.predict(x)
    per = (time.perf_counter() - began) / repeat
    rows.append(f"| network forward alone, {W}x{H} (torch threads {torch.get_num_threads()}) | {per * 1000:.1f} ms |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter test recordings")
    parser.add_argument("--ckpt", type=Path, help="score this checkpoint instead of the shipped model")
    parser.add_argument("--data-dir", type=Path, help="keep the test set here and reuse it on the next run")
    args = parser.parse_args()
    per_block, duration = (3, 500_000) if args.quick else (6, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or Path(tmp)
        began = time.perf_counter()
        marker = root / f"complete-{per_block}-{duration}"
        if not marker.is_file():
            pairs = make_test_set(root, per_block, duration)
            marker.write_text("\n".join(f"{e}\t{f}" for e, f in pairs))
        pairs = [(Path(e), Path(f)) for e, f in (line.split("\t") for line in marker.read_text().splitlines())]
        made = time.perf_counter() - began
        print(f"\n## opsin-event-flow pretrained model ({len(pairs)} test recordings, made in {made:.0f} s)\n")
        print(accuracy_table(score(pairs, args.ckpt)))
        print()
        print(speed_table(pairs, root, args.ckpt))


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as exc:  # a missing or unreadable --ckpt, an unwritable --data-dir
        raise SystemExit(f"Error: {exc}") from None
