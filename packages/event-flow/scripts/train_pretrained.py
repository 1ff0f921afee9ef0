"""Train the pretrained flow model shipped in ``opsin.eventflow.pretrained`` (supervised, synthetic ground truth).

The recipe, chosen for a CPU budget: every recording's event_cube features and ground-truth flow are held in memory;
a step draws B random clips of T consecutive 50 ms windows, each a random crop under one of the eight flips and
transposes of the square (labels transformed with it), starts the recurrent state from zero, and minimises the
endpoint error at every decoder level (level i of L weighted 2^-(L-1-i), its label area-averaged and divided by its
stride, since each level's flow is in pixels of its own grid). AdamW with a one-cycle learning-rate schedule; the
gradient norm is clipped at 1. Every ``--val-every`` steps the model runs over each validation recording whole, state
carried from window to window as ``opsin-eventflow infer`` does, and the checkpoint with the lowest event-masked AEE
is kept. The output checkpoint loads with ``FlowModel.load_from_checkpoint`` / ``pretrained.load``.

Usage: python train_pretrained.py FEATURES_DIR OUT_CKPT [--init CKPT] [--extra-train DIR] [--steps N] ...
FEATURES_DIR holds train/ and val/ with ``X.h5`` features (``data``: (N, 6, H, W)) and ``X_flow.h5`` labels beside.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from lightning.pytorch import __version__ as pl_version

from opsin.eventflow.lightning_model import FlowModel
from opsin.eventflow.metrics import FlowMetricAccumulator, event_mask_from_features


def load_split(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features (N, C, H, W), flow (N, 2, H, W)) of every labelled recording in ``folder``, sorted by name."""
    pairs = []
    for path in sorted(folder.glob("*.h5")):
        if path.stem.endswith("_flow"):
            continue
        label = path.with_name(path.stem + "_flow.h5")
        try:
            with h5py.File(path, "r") as f, h5py.File(label, "r") as g:
                features = np.asarray(f["data"], dtype=np.float32)
                flow = np.asarray(g["flow"], dtype=np.float32)
        except (OSError, KeyError) as exc:
            message = f"{path} with {label.name}: not a feature file ('data') with its labels ('flow') beside ({exc})"
            raise SystemExit(message) from None
        n = min(len(features), len(flow))
        pairs.append((features[:n], flow[:n]))
    if not pairs:
        raise SystemExit(f"no labelled feature files in {folder}")
    return pairs


def dihedral(features: np.ndarray, flow: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the eight symmetries of the square on (..., H, W) planes; flow components follow the geometry."""
    flow = flow.copy()
    if code & 1:  # flip x
        features, flow = features[..., ::-1], flow[..., ::-1]
        flow[:, 0] *= -1
    if code & 2:  # flip y
        features, flow = features[..., ::-1, :], flow[..., ::-1, :]
        flow[:, 1] *= -1
    if code & 4:  # transpose: x <-> y
        features, flow = np.swapaxes(features, -1, -2), np.swapaxes(flow, -1, -2)[:, ::-1]
    return np.ascontiguousarray(features), np.ascontiguousarray(flow)


def draw_batch(
    data: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, batch: int, tbins: int, crop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, B, C, crop, crop) features and (T, B, 2, crop, crop) labels of B random augmented clips."""
    xs, ys = [], []
    for _ in range(batch):
        features, flow = data[int(rng.integers(len(data)))]
        t0 = int(rng.integers(len(features) - tbins + 1))
        h, w = features.shape[-2:]
        y0, x0 = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        window = (slice(t0, t0 + tbins), slice(None), slice(y0, y0 + crop), slice(x0, x0 + crop))
        x, y = dihedral(features[window], flow[window], int(rng.integers(8)))
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.stack(xs, 1)), torch.from_numpy(np.stack(ys, 1))


def multiscale_epe(flows: list[torch.Tensor], label: torch.Tensor) -> torch.Tensor:
    """Weighted mean endpoint error of every level (coarsest first) against the area-averaged, rescaled label."""
    target = label.flatten(0, 1)
    valid = torch.isfinite(target).all(1, keepdim=True).float()
    target = torch.where(valid.bool(), target, torch.zeros_like(target))
    levels = len(flows)
    total = label.new_zeros(())
    for i, flow in enumerate(flows):
        stride = 2 ** (levels - 1 - i)
        pred = flow.flatten(0, 1)
        if stride > 1:
            num = F.avg_pool2d(target * valid, stride)
            den = F.avg_pool2d(valid, stride)
            tgt, msk = num / den.clamp_min(1e-6) / stride, (den > 0.999).float()
        else:
            tgt, msk = target, valid
        epe = torch.sqrt(((pred - tgt) ** 2).sum(1, keepdim=True) + 1e-6)
        total = total + (epe * msk).sum() / msk.sum().clamp_min(1.0) / stride
    return total


@torch.no_grad()
def validate(model: FlowModel, data: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(event-masked AEE, dense AEE), pixel-pooled over whole validation recordings, state carried through each file."""
    model.eval()
    masked, dense = FlowMetricAccumulator(), FlowMetricAccumulator()
    for features, flow in data:
        model.network.reset_all()
        pred = model(torch.from_numpy(features)[:, None])[-1][:, 0].numpy()
        for x, p, g in zip(features, pred, flow, strict=True):
            masked.update(p, g, events_mask=event_mask_from_features(x), keep_zero_gt=True)
            dense.update(p, g, keep_zero_gt=True)
    model.train()
    return masked.compute()["aee_pooled"], dense.compute()["aee_pooled"]


def save(model: FlowModel, out: Path, step: int) -> None:
    """A slim checkpoint (weights and hyper-parameters) that ``FlowModel.load_from_checkpoint`` reads."""
    ckpt = {
        "state_dict": {k: v.detach().float().contiguous() for k, v in model.state_dict().items()},
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": pl_version,
        "epoch": 0,
        "global_step": step,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(out)


def main() -> None:
    """Parse the flags, train, keep the best checkpoint by validation AEE."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    parser.add_argument(
        "--extra-train", type=Path, action="append", default=[], help="more folders of labelled training features"
    )
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tbins", type=int, default=4)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train = load_split(args.features_dir / "train")
    for folder in args.extra_train:
        train += load_split(folder)
    print(f"{len(train)} training recordings", flush=True)
    val = load_split(args.features_dir / "val")
    height, width = train[0][0].shape[-2:]
    model = FlowModel(
        delta_t=50_000,
        preprocess="event_cube",
        learning_rate=args.lr,
        array_dim=[args.tbins, 6, height, width],
        feature_extractor_name="eminet",
        network_kwargs={"base": 16, "depth": 1, "rnn_cell": "lstm", "separable": True},
    )
    if args.init:
        try:
            model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True)["state_dict"])
        except Exception as exc:  # unpickling errors come in many types
            raise SystemExit(f"--init {args.init}: not a usable eminet16 checkpoint ({type(exc).__name__})") from None
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps, pct_start=0.1)
    start, running = time.time(), 0.0
    aee, dense = validate(model, val)
    print(f"step 0: val AEE masked {aee:.3f} dense {dense:.3f}", flush=True)
    best = math.inf
    if args.init:  # the starting point is a candidate too: never ship something worse than it
        best = aee
        save(model, args.out, 0)
    for step in range(1, args.steps + 1):
        x, y = draw_batch(train, rng, args.batch, args.tbins, args.crop)
        model.network.reset_all()
        loss = multiscale_epe(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            print(f"step {step}: loss {running:.3f} ({(time.time() - start) / step:.2f} s/step)", flush=True)
        if step % args.val_every == 0 or step == args.steps:
            aee, dense = validate(model, val)
            mark = ""
            if aee < best:
                best, mark = aee, " (best, saved)"
                save(model, args.out, step)
            print(f"step {step}: val AEE masked {aee:.3f} dense {dense:.3f}{mark}", flush=True)
    print(f"best val AEE {best:.3f}; {time.time() - start:.0f} s; checkpoint {args.out}")


if __name__ == "__main__":
    main()
