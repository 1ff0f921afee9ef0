"""Example training script: a tiny patch-objectness detector learned from a COCO dataset (numpy + OpenCV only).

Every image is cut into square patches; each patch gets 12 hand-made features (brightness, colour, saturation,
gradient and Laplacian energy, fine detail lost by blurring, edge density, distance to the centre) and the label
"mostly covered by an annotated box". A logistic regression is trained by full-batch gradient descent. Because
several features live in the high spatial frequencies, degradations such as strong JPEG compression, blur or noise
change what the model can learn, which is what an image-quality experiment measures.

Follows the opsin-iq training-script contract::

    python train_objectness.py --trainds D --outputpath OUT [--valds V] [--testds T]
        [--mlfuri URI --mlfexpid ID --mlfrunid ID] [--epochs 40] [--lr 0.5] [--patch 32] [--l2 0.001] [--seed -1]

Without ``--valds`` a third of the training images (at least one) is held out for validation. Writes
``results.json`` (``train_loss``/``val_loss`` per epoch; ``val_auc``, ``val_accuracy``, ``val_f1``, ``rmse``,
``val_rmse``, ``train_rmse``, ...), ``output.json`` (COCO detections on the validation images: connected
groups of patches predicted as objects) and ``predictions/<image>.png`` objectness maps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}
FEATURES = (
    "gray_mean", "gray_std", "blue", "green", "red", "saturation",
    "grad_mean", "grad_std", "laplacian", "fine_detail", "edges", "centre_dist",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The training-script contract's arguments plus this model's hyper-parameters."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trainds", required=True, help="training dataset folder")
    p.add_argument("--outputpath", required=True, help="existing empty output folder")
    p.add_argument("--valds", default="", help="validation dataset folder")
    p.add_argument("--testds", default="", help="test dataset folder")
    p.add_argument("--mlfuri", default="")
    p.add_argument("--mlfexpid", default="")
    p.add_argument("--mlfrunid", default="")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--patch", type=int, default=32)
    p.add_argument("--l2", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=-1, help="-1: a fresh random seed (repetitions differ)")
    return p.parse_args(argv)


# -- dataset -------------------------------------------------------------------------------------------------------
def load_dataset(folder: str) -> tuple[Path, dict]:
    """The image folder and the COCO annotations of a dataset folder."""
    root = Path(folder)
    subs = [
        d for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".") and not d.name.endswith("_mask") and "stats" not in d.name
    ]  # fmt: skip
    if len(subs) != 1:
        sys.exit(f"{root}: expected exactly one image folder, found {[d.name for d in subs]}")
    jsons = sorted(j for j in root.glob("*.json") if not j.name.startswith("."))
    if len(jsons) != 1:
        sys.exit(f"{root}: expected exactly one COCO json file, found {[j.name for j in jsons]}")
    with jsons[0].open(encoding="utf-8") as fh:
        coco = json.load(fh)
    return subs[0], coco


def patch_features(img: np.ndarray, patch: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``(rows*cols, 12)`` features of the patch grid of one BGR image, and the grid shape."""
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = img[..., :3]
    if img.dtype != np.uint8:
        lo, hi = float(img.min()), float(img.max())
        img = np.clip((img.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255.0, 0, 255).astype(np.uint8)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    sat = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.sqrt(gx * gx + gy * gy)
    lap = np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=1))
    fine = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 1.0))
    edges = (cv2.Canny(img, 80, 160) > 0).astype(np.float32)
    rows, cols = gray.shape[0] // patch, gray.shape[1] // patch
    h, w = rows * patch, cols * patch

    def pooled(a: np.ndarray, fn: str = "mean") -> np.ndarray:
        blocks = a[:h, :w].reshape(rows, patch, cols, patch)
        return getattr(blocks, fn)(axis=(1, 3)).ravel()

    rr, cc = np.meshgrid((np.arange(rows) + 0.5) / rows - 0.5, (np.arange(cols) + 0.5) / cols - 0.5, indexing="ij")
    feats = [
        pooled(gray), pooled(gray, "std"),
        pooled(img[..., 0].astype(np.float32)), pooled(img[..., 1].astype(np.float32)),
        pooled(img[..., 2].astype(np.float32)), pooled(sat),
        pooled(grad), pooled(grad, "std"), pooled(lap), pooled(fine), pooled(edges),
        np.sqrt(rr * rr + cc * cc).ravel(),
    ]  # fmt: skip
    return np.stack(feats, axis=1).astype(np.float64), (rows, cols)


def patch_labels(shape: tuple[int, int], grid: tuple[int, int], patch: int, boxes: list[list[float]]) -> np.ndarray:
    """1 where at least half of a patch lies inside some annotated box."""
    mask = np.zeros(shape, np.uint8)
    for x, y, w, h in boxes:
        x0, y0 = max(round(x), 0), max(round(y), 0)
        mask[y0 : round(y + h), x0 : round(x + w)] = 1
    rows, cols = grid
    cover = mask[: rows * patch, : cols * patch].reshape(rows, patch, cols, patch).mean(axis=(1, 3))
    return (cover.ravel() >= 0.5).astype(np.float64)


def build(folder: str, patch: int, names: list[str] | None = None) -> dict:
    """Features, labels and per-image bookkeeping for (a subset of) a dataset."""
    images_dir, coco = load_dataset(folder)
    by_name = {im["file_name"]: im for im in coco.get("images", [])}
    boxes: dict[int, list[list[float]]] = {}
    for ann in coco.get("annotations", []):
        boxes.setdefault(ann["image_id"], []).append(ann["bbox"])
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if names is not None:
        files = [p for p in files if p.name in names]
    xs, ys, items = [], [], []
    for path in files:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            sys.exit(f"cannot read image {path}")
        meta = by_name.get(path.name)
        feats, grid = patch_features(img, patch)
        image_id = meta["id"] if meta else None
        labels = patch_labels(img.shape[:2], grid, patch, boxes.get(image_id, []) if image_id is not None else [])
        xs.append(feats)
        ys.append(labels)
        items.append({"name": path.name, "image_id": image_id, "grid": grid, "n": len(labels)})
    categories = Counter(ann["category_id"] for ann in coco.get("annotations", []))
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "items": items, "categories": categories}


# -- model ---------------------------------------------------------------------------------------------------------
def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function (clipped to avoid overflow)."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic with tied ranks averaged)."""
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def train(
    x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, args: argparse.Namespace, rng: np.random.Generator
) -> dict:
    """Full-batch gradient descent on an L2-regularised logistic regression; losses per epoch."""
    w = rng.normal(0, 0.01, x.shape[1])
    b = 0.0
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    for _ in range(args.epochs):
        p = sigmoid(x @ w + b)
        grad = p - y
        w -= args.lr * (x.T @ grad / len(y) + args.l2 * w)
        b -= args.lr * float(grad.mean())
        history["train_loss"].append(log_loss(sigmoid(x @ w + b), y))
        history["val_loss"].append(log_loss(sigmoid(xv @ w + b), yv))
    return {"w": w, "b": b, **history}


def detections(data: dict, probs: np.ndarray, patch: int, category: int) -> list[dict]:
    """COCO detections: connected groups of patches with probability >= 0.5."""
    out: list[dict] = []
    start = 0
    for item in data["items"]:
        rows, cols = item["grid"]
        grid = probs[start : start + item["n"]].reshape(rows, cols)
        start += item["n"]
        if item["image_id"] is None:
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats((grid >= 0.5).astype(np.uint8), connectivity=4)
        for k in range(1, n):
            c, r, wc, hr, _area = (int(v) for v in stats[k])
            score = float(grid[labels == k].mean())
            box = [float(c * patch), float(r * patch), float(wc * patch), float(hr * patch)]
            out.append({"image_id": item["image_id"], "category_id": category, "bbox": box, "score": score,
                        "area": box[2] * box[3], "iscrowd": 0, "id": len(out) + 1})  # fmt: skip
    return out


def save_maps(data: dict, probs: np.ndarray, folder: Path) -> None:
    """Write each image's objectness map (8 px per patch) as a PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for item in data["items"]:
        rows, cols = item["grid"]
        grid = probs[start : start + item["n"]].reshape(rows, cols)
        start += item["n"]
        img = cv2.resize((grid * 255).astype(np.uint8), (cols * 8, rows * 8), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(folder / (Path(item["name"]).stem + ".png")), img)


def evaluate(prefix: str, data: dict, w: np.ndarray, b: float, mean: np.ndarray, std: np.ndarray) -> tuple:
    """``({prefix}_auc, _accuracy, _f1, _rmse, _positive_rate}, probabilities)`` on one split."""
    p = sigmoid(((data["x"] - mean) / std) @ w + b)
    y = data["y"]
    pred = p >= 0.5
    tp = float(np.sum(pred & (y == 1)))
    precision = tp / max(float(pred.sum()), 1.0)
    recall = tp / max(float(y.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    res = {
        f"{prefix}_auc": auc(p, y),
        f"{prefix}_accuracy": float(np.mean(pred == (y == 1))),
        f"{prefix}_f1": f1,
        f"{prefix}_rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        f"{prefix}_positive_rate": float(y.mean()),
    }
    return res, p


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate, write ``results.json``/``output.json``/maps; returns the exit code."""
    args = parse_args(argv)
    out = Path(args.outputpath)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(None if args.seed < 0 else args.seed)
    same_val = not args.valds or os.path.abspath(args.valds) == os.path.abspath(args.trainds)
    if same_val:
        names = sorted(build(args.trainds, args.patch)["items"], key=lambda it: it["name"])
        order = rng.permutation(len(names))
        n_val = max(1, len(names) // 3) if len(names) > 1 else 0
        val_names = [names[i]["name"] for i in order[:n_val]] or [names[0]["name"]]
        train_names = [names[i]["name"] for i in order[n_val:]] or val_names
        tr = build(args.trainds, args.patch, train_names)
        va = build(args.trainds, args.patch, val_names)
    else:
        tr = build(args.trainds, args.patch)
        va = build(args.valds, args.patch)
    mean, std = tr["x"].mean(axis=0), tr["x"].std(axis=0) + 1e-9
    xt, xv = (tr["x"] - mean) / std, (va["x"] - mean) / std
    model = train(xt, tr["y"], xv, va["y"], args, rng)
    val_res, val_p = evaluate("val", va, model["w"], model["b"], mean, std)
    train_res, _ = evaluate("train", tr, model["w"], model["b"], mean, std)
    results = {
        "train_loss": model["train_loss"],
        "val_loss": model["val_loss"],
        **val_res,
        "train_auc": train_res["train_auc"],
        "train_rmse": train_res["train_rmse"],
        "rmse": val_res["val_rmse"],
        "epochs": args.epochs,
        "lr": args.lr,
        "n_train_patches": len(tr["y"]),
        "n_val_patches": len(va["y"]),
        "train_ds": os.path.basename(os.path.normpath(args.trainds)),
        "val_ds": os.path.basename(os.path.normpath(args.valds or args.trainds)),
        "weights": {name: float(v) for name, v in zip(FEATURES, model["w"], strict=True)},
    }
    if args.testds:
        te = build(args.testds, args.patch)
        test_res, _ = evaluate("test", te, model["w"], model["b"], mean, std)
        results.update(test_res)
    category = tr["categories"].most_common(1)[0][0] if tr["categories"] else 1
    (out / "output.json").write_text(json.dumps(detections(va, val_p, args.patch, category)), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    save_maps(va, val_p, out / "predictions")
    if args.mlfuri and args.mlfrunid:
        try:
            from mlflow import MlflowClient
        except ImportError:
            pass
        else:
            client = MlflowClient(tracking_uri=args.mlfuri)
            for key in ("val_auc", "val_rmse"):
                client.log_metric(args.mlfrunid, f"live_{key}", results[key])
    print(f"val_auc={results['val_auc']:.4f} val_rmse={results['val_rmse']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
