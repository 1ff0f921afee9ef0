"""Speed of the iq metrics and modifiers against the original iquaflow's recorded timings (spec section 6).

The original does not install on Python 3.11 (spec section 6), so its numbers are the anchors recorded on the same
kind of 2-core machine: sharpness 29.1 s and SNR-HB 0.31 s for the 10 COCO fixture images, JPEG modifier ~3 ms per
256x256 image including I/O, blur 0.09-0.55 s for 8 such images. Runs with 2 workers include the start of the
process pool (a few seconds: each worker imports OpenCV/SciPy), paid once per ``modify`` call.

Usage: python packages/iq-experiments/benchmarks/bench_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import os
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


def _tiles(root: Path, src: Path, n: int) -> Path:
    ds = root / "tiles"
    (ds / "images").mkdir(parents=True)
    files = sorted((src / "images").iterdir())
    k = 0
    while k < n:
        img, _ = read_image(files[k % len(files)])
        r, c = (k // len(files)) * 37 % (img.shape[0] - 256), (k * 53) % (img.shape[1] - 256)
        write_image(ds / "images" / f"tile_{k:03d}.jpg", img[r : r + 256, c : c + 256])
        k += 1
    return ds


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and tiles")
    args = ap.parse_args()
    repeat = 1 if args.quick else 3
    n_tiles = 16 if args.quick else 64
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        coco = coco_copy(root)
        images = str(coco / "images")
        t = _time(lambda: SharpnessMetric(None, ext="jpg", njobs=2).apply_folder(images), repeat)
        rows.append(("SharpnessMetric, 10 COCO images, 2 workers", f"{t:.2f} s", "29.1 s", 29.1 / t))
        if not args.quick:
            t = _time(lambda: SharpnessMetric(None, ext="jpg", parallel=False).apply_folder(images), 1)
            rows.append(("SharpnessMetric, 10 COCO images, 1 process", f"{t:.2f} s", "29.1 s (2 cores)", 29.1 / t))
        t = _time(lambda: SNRMetric(None, ext="jpg").apply_folder(images), repeat)
        rows.append(("SNRMetric HB, 10 COCO images", f"{t:.3f} s", "0.31 s", 0.31 / t))
        tiles = _tiles(root, coco, n_tiles)
        dsw = DSWrapper(data_path=str(tiles))
        anchors = {"jpg": 3.0, "blur": 550.0 / 8, "gsd": float("nan")}
        for name, make in (
            ("jpg", lambda j: DSModifier_jpg(params={"quality": 50}, n_jobs=j)),
            ("blur", lambda j: DSModifier_blur(params={"sigma": 2.0}, n_jobs=j)),
            ("gsd", lambda j: DSModifier_gsd(params={"scale": 2.0}, n_jobs=j)),
        ):
            for jobs in (1, 2):
                t = _time(lambda m=make, j=jobs: m(j).modify(ds_wrapper=dsw, force=True), repeat)
                per = 1000.0 * t / n_tiles
                per_core = per * jobs
                anchor = anchors[name]
                rows.append(
                    (
                        f"{name} modifier, {n_tiles} tiles 256x256 incl. I/O, {jobs} worker(s)",
                        f"{per:.2f} ms/img ({per_core:.2f} ms/img/core)",
                        "n/a" if np.isnan(anchor) else f"{anchor:.1f} ms/img",
                        float("nan") if np.isnan(anchor) else anchor / per,
                    )
                )
    print("| task | opsin.iq | original iquaflow (recorded) | speed-up |")
    print("|---|---|---|---|")
    for task, ours, anchor, ratio in rows:
        print(f"| {task} | {ours} | {anchor} | {'n/a' if np.isnan(ratio) else f'{ratio:.1f}x'} |")


if __name__ == "__main__":
    main()
