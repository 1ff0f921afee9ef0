"""Benchmark of the procedural generators: labelled frames/s of VisionFit video batches and shapes images/s.

Runs batches of jobs on ``opsin.core.make_executor("local", 2)`` (two worker processes, warmed up first) and prints
one markdown table. Anchor: the original cloud's per-job throughput, computed from ``timing.json`` of the real
fixture batch (frames / sum of every stage's seconds), the same numbers the spec quotes (0.009-0.026 frames/s).

    python packages/synth-client/benchmarks/bench_generators.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opsin.core import make_executor
from opsin.synth.server.generators import get_generator

FIXTURE_BATCH = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "visionfit-v0.4.0-sample"
EXERCISES = ["SQUAT-BODYWEIGHT", "UPPERCUT-LEFT", "PUSHUP", "BURPEE", "BICEP_CURL-ALTERNATING-DUMBBELL", "CRUNCHES"]


def original_anchor() -> tuple[float, float] | None:
    """Per-job frames/s of the original cloud: num_frames / total stage seconds, over the fixture batch."""
    rates = []
    for timing_path in sorted(FIXTURE_BATCH.glob("*/timing.json")):
        timing = json.loads(timing_path.read_text())
        seconds = sum(
            sum(v) for k, v in timing.items()
            if isinstance(v, list) and not k.endswith("_normalized") and k != "dry_run_checked_frames"
        )  # fmt: skip
        rates.append(timing["num_frames"] / seconds)
    return (min(rates), max(rates)) if rates else None


def _job(generator_name: str, params: dict[str, Any], seed: int, out: Path) -> tuple[str, dict[str, Any], int, Path]:
    return generator_name, params, seed, out


def timed_run(name: str, params: dict[str, Any], seed: int, out: Path) -> tuple[int, float]:
    """Run one job in a worker; returns (frames, CPU seconds of the worker process)."""
    start = time.process_time()
    frames = get_generator(name).run(params, False, seed, out, None)
    return frames, time.process_time() - start


def run_batch(pool: Any, jobs: list[tuple[str, dict[str, Any], int, Path]]) -> tuple[int, float, float]:
    """Run jobs on the pool; returns (frames rendered, wall seconds, worker CPU seconds)."""
    start = time.perf_counter()
    futures = []
    for name, params, seed, out in jobs:
        out.mkdir(parents=True)
        futures.append(pool.submit(timed_run, name, params, seed, out))
    results = [f.result() for f in futures]
    wall = time.perf_counter() - start
    return sum(r[0] for r in results), wall, sum(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches (< 2 min)")
    args = parser.parse_args()
    vf = get_generator("visionfit-v0.4.0")
    shapes = get_generator("shapes-v0.1.0")
    num_jobs = 4 if args.quick else 8
    reps = 2 if args.quick else 3
    rows = []
    anchor = original_anchor()
    with tempfile.TemporaryDirectory(prefix="opsin-bench-gen-") as tmp, make_executor("local", 2) as pool:
        root = Path(tmp)
        # warm the two workers (imports, first-call costs) with previews
        warm = []
        for i in range(2):
            (root / f"warm{i}").mkdir()
            params = {**vf.defaults(), "image_width": 128, "image_height": 128}
            warm.append(pool.submit(vf.run, params, True, i, root / f"warm{i}", None))
        for future in warm:
            future.result()
        for size in (256, 512):
            jobs = []
            for i in range(num_jobs if size == 256 else max(2, num_jobs // 2)):
                job_reps = reps if size == 256 or not args.quick else 1
                params = {**vf.defaults(), "exercise": EXERCISES[i % len(EXERCISES)], "num_reps": job_reps,
                          "frame_rate": 24, "image_width": size, "image_height": size, "lighting_power": 400.0,
                          "enable_sensor_noise": i % 2 == 0, "add_wall_art": bool(i % 2),
                          "scene": "LIVINGROOM_1"}  # fmt: skip
                jobs.append(_job(vf.name, params, 100 + i, root / f"vf{size}-{i}"))
            frames, seconds, cpu = run_batch(pool, jobs)
            rows.append((f"VisionFit video batch {size}x{size} ({len(jobs)} jobs)", "labelled frames", frames, seconds,
                         cpu, ">= 50/s" if size == 256 else "-"))  # fmt: skip
        num_images = 25 if args.quick else 60
        sjobs = [_job(shapes.name, {**shapes.defaults(), "num_images": num_images}, 7 + i, root / f"sh{i}")
                 for i in range(4)]  # fmt: skip
        images, seconds, cpu = run_batch(pool, sjobs)
        rows.append(("shapes batch 256x256 (4 jobs)", "images", images, seconds, cpu, "-"))
    lo, hi = anchor if anchor else (float("nan"), float("nan"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Generators, 2 worker processes (opsin.core local executor){' --quick' if args.quick else ''}; "
        f"{os.cpu_count()} CPUs, load average {load:.1f} at the end"
    )
    print(f"Anchor: original cloud {lo:.4f}-{hi:.4f} frames/s per job (fixture timing.json, 256x256)\n")
    print("| workload | unit | count | wall s | per second | worker CPU s | per CPU-second | 2 free cores (est.) "
          "| target | ratio vs original (per job, best..worst) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for label, unit, count, seconds, cpu, target in rows:
        rate = count / seconds
        per_cpu = count / cpu
        ratio = f"{rate / hi:,.0f}x .. {rate / lo:,.0f}x" if anchor and unit == "labelled frames" else "-"
        print(f"| {label} | {unit} | {count} | {seconds:.2f} | {rate:.1f} | {cpu:.2f} | {per_cpu:.1f} | "
              f"{2 * per_cpu:.1f} | {target} | {ratio} |")  # fmt: skip
    print(
        "\n'2 free cores (est.)' = 2 x count / worker CPU seconds: the rate two uncontended cores would give; "
        "'per second' is wall-clock on this machine as it was loaded."
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
