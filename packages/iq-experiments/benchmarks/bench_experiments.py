"""Benchmark: experiment framework overhead per run, and the speed-up of 2 parallel workers.

Anchors (same run): the training script executed alone (``subprocess``), and 1 worker vs 2 workers on the same
CPU-bound grid. Target: overhead <= 0.5 s per run. Prints one markdown table. ``--quick`` uses fewer runs.

    python packages/iq-experiments/benchmarks/bench_experiments.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL = """
import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--trainds"); p.add_argument("--outputpath"); p.add_argument("--i", type=int, default=0)
a = p.parse_args()
json.dump({"loss": [1.0, 0.5, 0.25], "acc": 0.9, "i": a.i}, open(os.path.join(a.outputpath, "results.json"), "w"))
"""

BUSY = """
import argparse, json, os, time
p = argparse.ArgumentParser()
p.add_argument("--trainds"); p.add_argument("--outputpath"); p.add_argument("--i", type=int, default=0)
a = p.parse_args()
t = time.process_time()
x = 0
while time.process_time() - t < {cpu_s}:
    for k in range(20000):
        x += k * k
json.dump({{"x": x % 97}}, open(os.path.join(a.outputpath, "results.json"), "w"))
"""


def _dataset(root: Path) -> Path:
    ds = root / "ds"
    (ds / "images").mkdir(parents=True)
    (ds / "images" / "a.png").write_bytes(b"")  # never read: the base modifier in symlink mode runs on the original
    return ds


def _grid(name: str, script: Path, ds: Path, n: int, workers: int) -> tuple[float, float]:
    from opsin.iq.datasets import DSModifier, DSWrapper
    from opsin.iq.experiments import ExperimentSetup, PythonScriptTaskExecution

    mod = DSModifier()
    mod._toggle_on_symlink_for_base_modifier()
    setup = ExperimentSetup(
        experiment_name=name,
        task_instance=PythonScriptTaskExecution(script),
        ref_dsw_train=DSWrapper(data_path=str(ds)),
        ds_modifiers_list=[mod],
        extra_train_params={"i": list(range(n))},
        max_workers=workers,
        resume=False,
        progress=False,
    )
    start = time.perf_counter()
    outcomes = setup.execute()
    wall = time.perf_counter() - start
    assert all(o.status == "FINISHED" for o in outcomes), [o.status for o in outcomes]
    return wall, sum(o.duration_s for o in outcomes)


def _alone(script: Path, ds: Path, n: int, tmp: Path) -> float:
    start = time.perf_counter()
    for i in range(n):
        out = tmp / f"alone{i}"
        out.mkdir()
        subprocess.run(
            [sys.executable, str(script), "--trainds", str(ds), "--outputpath", str(out), "--i", str(i)], check=True
        )
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_overhead = 6 if args.quick else 20
    n_parallel = 4 if args.quick else 8
    cpu_s = 0.5 if args.quick else 1.0
    logging.disable(logging.WARNING)
    os.environ["OPSIN_NO_PROGRESS"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-iq-exp-") as tmp_str:
        tmp = Path(tmp_str)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        ds = _dataset(tmp)
        trivial, busy = tmp / "trivial.py", tmp / "busy.py"
        trivial.write_text(TRIVIAL)
        busy.write_text(BUSY.format(cpu_s=cpu_s))
        _grid("warmup", trivial, ds, 1, 1)  # creates and migrates the store, imports mlflow
        alone = _alone(trivial, ds, n_overhead, tmp)
        wall, scripts = _grid("overhead", trivial, ds, n_overhead, 1)
        per_run = wall / n_overhead
        overhead = (wall - scripts) / n_overhead
        w1, _ = _grid("serial", busy, ds, n_parallel, 1)
        w2, _ = _grid("parallel", busy, ds, n_parallel, 2)
    rows = [
        ("trivial script alone (subprocess), s/run", f"{alone:.3f}", "anchor"),
        (f"same script in an experiment ({n_overhead} runs, 1 worker), s/run", f"{per_run:.3f}",
         f"{per_run / alone:.2f}x"),
        ("framework overhead beyond the script, s/run", f"{overhead:.3f}", "target <= 0.5 s: "
         + ("met" if overhead <= 0.5 else "MISSED")),
        (f"CPU-bound grid, {n_parallel} runs x {cpu_s} s CPU, 1 worker, s", f"{w1:.2f}", "anchor"),
        ("same grid, 2 workers, s", f"{w2:.2f}", f"speed-up {w1 / w2:.2f}x"),
    ]  # fmt: skip
    print(f"| measurement (cpus: {os.cpu_count()}) | value | vs anchor |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    print(json.dumps({"overhead_s_per_run": overhead, "speedup_2_workers": w1 / w2}))


if __name__ == "__main__":
    main()
