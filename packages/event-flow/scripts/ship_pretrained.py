"""Copy the newest ``last.ckpt`` under a training folder into the package, without optimizer or loop state.

A shipped checkpoint needs only the weights and the hyper-parameters (``FlowModel.load_from_checkpoint`` reads
nothing else); dropping Adam's two moment buffers makes it a third of the size.

Usage: python ship_pretrained.py RUNS_DIR_OR_CKPT OUT_CKPT
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def main(source: str, out: str) -> None:
    """Write the slim copy of the newest last checkpoint under ``source`` to ``out``."""
    src = Path(source)
    ckpt = src if src.is_file() else max(src.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    full = torch.load(ckpt, map_location="cpu", weights_only=False)
    keep = ("state_dict", "hyper_parameters", "hparams_name", "pytorch-lightning_version", "epoch", "global_step")
    slim = {key: full[key] for key in keep if key in full}
    slim["state_dict"] = {k: v.float().contiguous() for k, v in slim["state_dict"].items()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, out)
    print(f"{ckpt} -> {out} ({Path(out).stat().st_size / 1e6:.1f} MB, epoch {slim.get('epoch')})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
