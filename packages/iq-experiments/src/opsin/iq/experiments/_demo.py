"""The ``opsin-iq demo`` pipeline: a synthetic COCO dataset, a small JPEG-quality grid, metrics and a plot.

The synthetic images hold finely textured rectangles (the "objects", annotated as COCO boxes) on smooth, slightly
noisy backgrounds of similar brightness, plus one flat high-contrast rectangle (a distractor whose clean edges feed
the sharpness metric), so the bundled objectness script has to rely on high-frequency detail,
which strong JPEG compression removes: its validation AUC falls with the quality.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from opsin.core import get_logger, rng

__all__ = ["make_synthetic_coco", "run_demo", "sharpness_metric"]

logger = get_logger(__name__)


def make_synthetic_coco(folder: str | os.PathLike[str], n_images: int = 10, size: int = 192, seed: int = 0) -> Path:
    """Write a synthetic COCO dataset ``<folder>/images/*.png`` + ``annotations.json``; returns ``folder``.

    Args:
        folder: the dataset folder (created).
        n_images: number of images.
        size: image side in pixels.
        seed: everything is drawn from ``opsin.core.rng(seed, "iq-demo")``.
    """
    root = Path(folder)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    g = rng(seed, "iq-demo")
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(n_images):
        base = g.uniform(90, 160)
        tilt = g.uniform(-0.25, 0.25, 2)
        img = base + tilt[0] * (xx - size / 2) + tilt[1] * (yy - size / 2)
        img = np.repeat(img[..., None], 3, axis=2) + g.uniform(-10, 10, 3)
        for _ in range(int(g.integers(1, 4))):
            w, h = (int(v) for v in g.integers(40, 88, 2))
            x0, y0 = int(g.integers(0, size - w)), int(g.integers(0, size - h))
            period = int(g.integers(2, 4))
            checker = ((yy[y0 : y0 + h, x0 : x0 + w] // period + xx[y0 : y0 + h, x0 : x0 + w] // period) % 2) * 2 - 1
            patch = base + g.uniform(-15, 15) + g.uniform(5, 10) * checker
            img[y0 : y0 + h, x0 : x0 + w, :] = patch[..., None] + g.uniform(-8, 8, 3)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "bbox": [x0, y0, w, h],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
        img += g.normal(0, 4.0, img.shape)
        # an untextured, high-contrast distractor (not an object): straight clean edges for the sharpness metric
        w, h = (int(v) for v in g.integers(36, 60, 2))
        x0, y0 = int(g.integers(4, size - w - 4)), int(g.integers(4, size - h - 4))
        img[y0 : y0 + h, x0 : x0 + w, :] = np.clip(base + g.choice([-70.0, 70.0]), 5, 250) + g.normal(0, 0.5, (h, w, 3))
        img = cv2.GaussianBlur(img, (0, 0), 0.7)  # a camera-like PSF: edges of finite sharpness
        name = f"synthetic_{i:03d}.png"
        cv2.imwrite(str(images_dir / name), np.clip(np.rint(img), 0, 255).astype(np.uint8))
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "textured_box"}]}
    (root / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    return root


class _PerDataset:
    """Wraps an image metric so that runs sharing a training dataset measure it once."""

    def __init__(self, info: Any, metric: Any) -> None:
        self.info = info
        self.metric = metric
        self.name = getattr(metric, "name", "metric")
        self._cache: dict[str, dict[str, Any]] = {}

    def apply(self, predictions: str, gt_path: str) -> dict[str, Any]:
        dataset = next(
            (r["train_ds_path"] for r in self.info.runs.values() if r["output_pred_path"] == predictions), predictions
        )
        if dataset not in self._cache:
            self._cache[dataset] = dict(self.metric.apply(predictions, gt_path))
        return self._cache[dataset]


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    qualities: tuple[int, int] = (5, 95),
    lrs: tuple[float, float] = (0.1, 1.0),
    max_workers: int | None = None,
    metrics: bool = True,
) -> dict[str, Any]:
    """Run the demo into ``out_dir`` (mlflow store, datasets, plot) and return a summary.

    Steps: synthetic dataset; ``DSModifier_jpg`` at two qualities x two learning rates with the bundled objectness
    script (4 runs); SNR and sharpness measured on every run's training images; ``val_auc`` against the modifier,
    one line per learning rate, saved as ``<out_dir>/demo_val_auc.png``.

    Returns:
        ``experiment``, ``tracking_uri``, ``runs`` (statuses), ``table`` (a data frame), ``no_edges`` (modifiers
        whose dataset had no edge passing the sharpness gates), ``unmeasured`` (modifier -> the measured columns
        without any value, e.g. no flat patch for the SNR in strongly compressed images), ``mlflow_ui`` (the
        command that opens the runs), ``plot`` and ``seconds``.
    """
    from opsin.iq.datasets import DSModifier_jpg, DSWrapper
    from opsin.iq.experiments._info import ExperimentInfo
    from opsin.iq.experiments._setup import ExperimentSetup
    from opsin.iq.experiments._visual import ExperimentVisual
    from opsin.iq.experiments.examples import example_script_path
    from opsin.iq.experiments.task_execution import PythonScriptTaskExecution

    start = time.perf_counter()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{out / 'mlflow' / 'mlflow.db'}"
    ds = make_synthetic_coco(out / "data" / "synthetic_coco")
    name = "opsin-iq-demo"
    setup = ExperimentSetup(
        experiment_name=name,
        task_instance=PythonScriptTaskExecution(example_script_path()),
        ref_dsw_train=DSWrapper(data_path=str(ds)),
        ds_modifiers_list=[DSModifier_jpg(params={"quality": q}) for q in qualities],
        extra_train_params={"lr": list(lrs), "seed": [7]},
        cloud_options={"tracking_uri": uri},
        max_workers=max_workers,
    )
    outcomes = setup.execute()
    info = ExperimentInfo(name, tracking_uri=uri)
    measured: list[str] = []
    if metrics:
        from opsin.iq.metrics import SNRMetric

        gt = str(ds / "annotations.json")
        with _quiet_metrics():
            info.apply_metric_per_run(_PerDataset(info, SNRMetric(info, ext="png")), gt)
            info.apply_metric_per_run(_PerDataset(info, sharpness_metric(info, workers=1, ext="png")), gt)
        measured += ["snr_median", "RER_X", "RER_Y", "FWHM_X"]
    df = info.get_df(["modifier", "lr"], ["val_auc", *measured], dropna=False, fields_to_float_lst=["ds_lr"])
    for col in measured:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    no_edges: list[str] = []
    unmeasured: dict[str, list[str]] = {}
    for modifier, rows in df.groupby("ds_modifier", sort=False):
        missing = [c for c in measured if rows[c].isna().all()]
        if missing:
            unmeasured[str(modifier)] = missing
        if {"RER_X", "RER_Y", "FWHM_X"} <= set(missing):
            no_edges.append(str(modifier))
    plot = out / "demo_val_auc.png"
    ExperimentVisual(df, plot).visualize(
        xvar="ds_modifier", yvar="val_auc", legend_var="ds_lr", title="objectness AUC vs JPEG quality"
    )
    return {
        "experiment": name,
        "tracking_uri": uri,
        "runs": [o.status for o in outcomes],
        "table": df,
        "no_edges": no_edges,
        "unmeasured": unmeasured,
        "mlflow_ui": f"mlflow ui --backend-store-uri {uri}",
        "plot": str(plot),
        "seconds": time.perf_counter() - start,
    }


@contextlib.contextmanager
def _quiet_metrics() -> Iterator[None]:
    """Keep the demo's output readable: no per-image warnings from the metrics, no NumPy runtime warnings.

    Strong JPEG compression leaves no edge that passes the sharpness gates; the metric then warns for every image
    and NumPy about means of empty slices. The demo reports that once per dataset instead (``no_edges``).
    """
    names = ("opsin.iq", "opsin.iq.metrics")
    saved = {n: get_logger(n).level for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in names:
            get_logger(n).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for n, level in saved.items():
                get_logger(n).setLevel(level)


def sharpness_metric(experiment_info: Any, workers: int | None, **kwargs: Any) -> Any:
    """A :class:`~opsin.iq.metrics.SharpnessMetric` with ``workers`` processes (``None``: all CPUs).

    Passes the worker count under the name the installed metric accepts (``workers``, or the older ``njobs`` with
    ``parallel``).
    """
    from opsin.iq.metrics import SharpnessMetric

    accepted = inspect.signature(SharpnessMetric).parameters
    if "workers" in accepted:
        kwargs["workers"] = workers
    else:
        kwargs.update(parallel=workers != 1, njobs=workers or -1)
    return SharpnessMetric(experiment_info, **kwargs)
