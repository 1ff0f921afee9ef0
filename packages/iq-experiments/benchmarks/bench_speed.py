"""Speed of the iq metrics and modifiers, side by side with the original iquaflow where it can run.

Sharpness: the 10 COCO fixture images, 2 workers, median of 3 calls in one process (the first call starts the
worker processes, the others reuse them, as a script or notebook measuring several datasets does). When
``OPSIN_BENCH_IQUAFLOW_PYTHON`` names the interpreter of a separate environment holding ``iquaflow==1.0.1`` (it
needs numpy < 1.24 and scikit-image < 0.23, so it cannot share ours; see ``_iquaflow_sharpness.py``), the original
is timed on the same images in the same run, the way its ``SharpnessMetric`` runs (joblib, 2 workers); otherwise
its recorded time is shown. Modifiers: jpg, blur and gsd over a small job (16 tiles of 256x256) and a large one
(tiles of 1024x1024), with 1 and 2 workers, each after a warm-up call.

Usage: python packages/iq-experiments/benchmarks/bench_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPSIN_NO_PROGRESS", "1")

from _common import coco_copy

from opsin.iq.datasets import DSModifier_blur, DSModifier_gsd, DSModifier_jpg, DSWrapper
from opsin.iq.io import read_image, write_image
from opsin.iq.metrics import SharpnessMetric, SNRMetric

RECORDED_IQUAFLOW_SHARPNESS_S = 16.9  # iquaflow 1.0.1, 10 COCO images, 2 workers, measured on a 2-core machine


def _tiles(root: Path, src: Path, n: int, size: int, name: str) -> Path:
    ds = root / name
    (ds / "images").mkdir(parents=True)
    files = sorted((src / "images").iterdir())
    for k in range(n):
        img, _ = read_image(files[k % len(files)])
        reps = (-(-size // img.shape[0]) + 1, -(-size // img.shape[1]) + 1, 1)
        big = np.tile(img, reps)
        r, c = (k * 37) % max(1, big.shape[0] - size + 1), (k * 53) % max(1, big.shape[1] - size + 1)
        write_image(ds / "images" / f"tile_{k:03d}.jpg", big[r : r + size, c : c + size])
    return ds


def _times(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _iquaflow(images: str, repeat: int) -> tuple[list[float], dict] | None:
    python = os.environ.get("OPSIN_BENCH_IQUAFLOW_PYTHON", "").strip()
    if not python:
        return None
    script = Path(__file__).resolve().parent / "_iquaflow_sharpness.py"
    done = subprocess.run(
        [python, str(script), images, "jpg", "2", str(repeat)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"iquaflow run failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return data["seconds"], data["result"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and tiles")
    args = ap.parse_args()
    repeat = 3
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        coco = coco_copy(root)
        images = str(coco / "images")
        ours = _times(lambda: SharpnessMetric(None, ext="jpg", workers=2).apply_folder(images), repeat)
        median = statistics.median(ours)
        original = _iquaflow(images, 1 if args.quick else repeat)
        if original is not None:
            anchor = statistics.median(original[0])
            anchor_text = f"{anchor:.2f} s (iquaflow 1.0.1, this run)"
        else:
            anchor = RECORDED_IQUAFLOW_SHARPNESS_S
            anchor_text = f"{anchor:.1f} s (iquaflow 1.0.1, recorded; set OPSIN_BENCH_IQUAFLOW_PYTHON to run it)"
        runs = ", ".join(f"{t:.2f}" for t in ours)
        rows.append(
            (
                "SharpnessMetric, 10 COCO images, 2 workers, median of 3",
                f"{median:.2f} s (runs {runs})",
                anchor_text,
                f"{anchor / median:.1f}x (target >= 10x)",
            )
        )
        one = _times(lambda: SharpnessMetric(None, ext="jpg", workers=1).apply_folder(images), 1)[0]
        rows.append(
            ("SharpnessMetric, 10 COCO images, 1 worker", f"{one:.2f} s", "", f"2 workers: {one / median:.2f}x")
        )
        snr = min(_times(lambda: SNRMetric(None, ext="jpg").apply_folder(images), repeat))
        rows.append(("SNRMetric HB, 10 COCO images", f"{snr:.3f} s", "0.31 s (recorded)", f"{0.31 / snr:.1f}x"))
        jobs = {
            "small": _tiles(root, coco, 16, 256, "small"),
            "large": _tiles(root, coco, 8 if args.quick else 16, 1024, "large"),
        }
        sizes = {"small": "16 tiles 256x256", "large": f"{8 if args.quick else 16} tiles 1024x1024"}
        makers = {
            "jpg": lambda w: DSModifier_jpg(params={"quality": 50}, workers=w),
            "blur": lambda w: DSModifier_blur(params={"sigma": 2.0}, workers=w),
            "gsd": lambda w: DSModifier_gsd(params={"scale": 2.0}, workers=w),
        }
        for size, ds in jobs.items():
            dsw = DSWrapper(data_path=str(ds))
            count = len(os.listdir(ds / "images"))
            for name, make in makers.items():
                per: dict[int, float] = {}
                for workers in (1, 2):
                    make(workers).modify(ds_wrapper=dsw, force=True)  # warm-up: caches, imports, pools
                    t = min(_times(lambda m=make, w=workers, d=dsw: m(w).modify(ds_wrapper=d, force=True), repeat))
                    per[workers] = 1000.0 * t / count
                rows.append(
                    (
                        f"{name} modifier, {sizes[size]} incl. I/O",
                        f"1 worker {per[1]:.2f} ms/img, 2 workers {per[2]:.2f} ms/img",
                        "",
                        f"2 workers: {per[1] / per[2]:.2f}x",
                    )
                )
    print(f"| task (cpus: {os.cpu_count()}) | opsin.iq | original iquaflow | ratio |")
    print("|---|---|---|---|")
    for task, ours_text, anchor_text, ratio in rows:
        print(f"| {task} | {ours_text} | {anchor_text} | {ratio} |")


if __name__ == "__main__":
    main()
