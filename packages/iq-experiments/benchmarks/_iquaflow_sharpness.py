"""Time the original iquaflow's sharpness metric on a folder, the way its ``SharpnessMetric.apply`` runs it.

Run by ``bench_speed.py`` with the interpreter of a separate environment holding ``iquaflow==1.0.1`` (it cannot share
an environment with opsin: it needs numpy < 1.24 and scikit-image < 0.23). Prints one JSON line:
``{"seconds": [...], "result": {...}}``.

Usage: <iquaflow python> _iquaflow_sharpness.py FOLDER EXT WORKERS REPEAT

``pip install iquaflow==1.0.1`` fails on Python 3.11 (it pins ``opencv-python==4.4.0.44``, yanked, no cp311 wheel);
this environment runs its sharpness metric unchanged::

    uv venv /tmp/iquaflow-1.0.1 --python 3.11
    uv pip install --python /tmp/iquaflow-1.0.1/bin/python --no-deps iquaflow==1.0.1
    uv pip install --python /tmp/iquaflow-1.0.1/bin/python numpy==1.23.5 "scipy<1.12" scikit-image==0.22.0 \
        "opencv-python-headless<4.9" joblib "pandas<2.1" matplotlib tqdm pillow pycocotools geojson \
        "rasterio<1.4" shapely
    OPSIN_BENCH_IQUAFLOW_PYTHON=/tmp/iquaflow-1.0.1/bin/python nox -s bench
"""

import glob
import json
import os
import sys
import time

import numpy as np
from iquaflow.metrics.sharpness_metric import sharpness_function_from_fn
from joblib import Parallel, delayed


def measure(files: list, ext: str, workers: int) -> dict:
    metrics = ["RER", "FWHM", "MTF"]
    per_image = Parallel(n_jobs=workers)(
        delayed(sharpness_function_from_fn)(fn, ext, metrics, calculate_mean=True) for fn in files
    )
    values: dict = {}
    for result in per_image:
        for key, pair in result["mean"].items():
            values.setdefault(key, []).append(pair[0])
    return {key: round(float(np.nanmean(v)), 3) for key, v in values.items()}


def main() -> None:
    folder, ext, workers, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    files = sorted(glob.glob(os.path.join(folder, f"*.{ext}")))
    seconds = []
    result = {}
    for _ in range(repeat):
        start = time.perf_counter()
        result = measure(files, ext, workers)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "result": result}))


if __name__ == "__main__":
    main()
