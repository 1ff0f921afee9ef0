"""TorchScript export of a trained flow network: ``model_flow.ptjit`` and ``info_flow_jit.json``.

The scripted network keeps ``forward``, ``reset`` and ``reset_all`` (the pyramid, warping and losses stay outside:
inference needs only the flows). Before anything is written the scripted network is run next to the eager one on
the same random sparse input, twice with a state reset in between, and must agree (fp32: rtol 1e-4, atol 1e-6).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch

from opsin.core import atomic_path, atomic_write_text, get_logger
from opsin.eventflow.errors import EventFlowError
from opsin.eventflow.lightning_model import FlowModel, load_flow_model

__all__ = ["INFO_NAME", "MODEL_NAME", "check_scripted", "export_checkpoint", "export_model", "model_info"]

_log = get_logger(__name__)

MODEL_NAME = "model_flow.ptjit"
INFO_NAME = "info_flow_jit.json"


def model_info(model: FlowModel) -> dict[str, Any]:
    """The description written beside the scripted network (everything inference needs to build its input)."""
    hp: Any = model.hparams
    network_kwargs = dict(hp.network_kwargs)
    network_kwargs.setdefault("scales", int(model.network.get_nb_scales()))
    n_t, cin, height, width = (int(v) for v in hp.array_dim)
    return {
        "delta_t": int(hp.delta_t),
        "array_dim": [n_t, cin, height, width],
        "loss_weights": dict(hp.loss_weights),
        "feature_extractor_name": str(hp.feature_extractor_name),
        "network_kwargs": network_kwargs,
        "cin": cin,
        "height": height,
        "width": width,
        "num_tbins": n_t,
        "preprocess": str(hp.preprocess),
        "preprocess_kwargs": dict(hp.preprocess_kwargs or {}),
    }


def _sample_input(model: FlowModel, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    hp: Any = model.hparams
    n_t, cin, height, width = (int(v) for v in hp.array_dim)
    gen = torch.Generator().manual_seed(0)
    values = torch.rand((n_t, 1, cin, height, width), generator=gen)
    keep = torch.rand((n_t, 1, 1, height, width), generator=gen) < 0.2  # event features are sparse
    return (values * keep).to(device=device, dtype=dtype)


def check_scripted(
    eager: torch.nn.Module, scripted: Any, inputs: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6
) -> float:
    """Runs both networks twice (``reset_all`` before each run) and compares every flow level.

    Returns:
        The largest absolute difference.

    Raises:
        EventFlowError: a level differs beyond the tolerances, or a rerun after ``reset_all`` differs.
    """
    worst = 0.0
    with torch.no_grad():
        runs = []
        for _ in range(2):
            eager.reset_all()  # type: ignore[operator]
            scripted.reset_all()
            runs.append((eager(inputs), scripted(inputs)))
    for reference, candidate in runs:
        if len(reference) != len(candidate):
            message = f"the scripted network returns {len(candidate)} flows, the eager one {len(reference)}"
            raise EventFlowError(message)
        for level, (a, b) in enumerate(zip(reference, candidate, strict=True)):
            worst = max(worst, float((a.float() - b.float()).abs().max()))
            if not torch.allclose(a.float(), b.float(), rtol=rtol, atol=atol):
                message = f"the scripted network differs from the eager one at level {level} (max |diff| {worst:.3g})"
                raise EventFlowError(message)
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        if not torch.equal(a, b):
            message = "the scripted network does not reproduce its output after reset_all()"
            raise EventFlowError(message)
    return worst


def export_model(model: FlowModel, out_dir: str | os.PathLike[str], fp16: bool = False) -> list[Path]:
    """Scripts ``model.network``, checks it against eager, and writes the two files into ``out_dir``.

    Args:
        model: the trained model.
        out_dir: the output folder (created).
        fp16: export in half precision (checked on CUDA when present, rtol 1e-2; fp32 is always checked).

    Returns:
        The paths of ``model_flow.ptjit`` and ``info_flow_jit.json``.

    Raises:
        EventFlowError: scripting fails or the scripted network differs from the eager one.
    """
    network = model.network.cpu().float().eval()
    try:
        scripted = torch.jit.script(network)
    except Exception as exc:  # TorchScript raises many unrelated types
        message = f"the network cannot be scripted ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
        raise EventFlowError(message) from exc
    worst = check_scripted(network, scripted, _sample_input(model, torch.float32, torch.device("cpu")))
    _log.info("scripted == eager in fp32 (max |diff| %.3g)", worst)
    if fp16:
        half_eager = copy.deepcopy(network).half()  # the caller's model stays in fp32
        if torch.cuda.is_available():
            device = torch.device("cuda")
            half_eager.to(device)
            half_scripted = torch.jit.script(half_eager)
            check_scripted(half_eager, half_scripted, _sample_input(model, torch.float16, device), rtol=1e-2, atol=1e-3)
            half_eager.cpu()
        else:
            _log.warning("no CUDA device: the fp16 export is not checked numerically")
        scripted = torch.jit.script(half_eager)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model_path, info_path = folder / MODEL_NAME, folder / INFO_NAME
    with atomic_path(model_path) as tmp:
        torch.jit.save(scripted, str(tmp))
    info = model_info(model)
    info["fp16"] = bool(fp16)
    atomic_write_text(info_path, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return [model_path, info_path]


def export_checkpoint(ckpt: str | os.PathLike[str], out_dir: str | os.PathLike[str], fp16: bool = False) -> list[Path]:
    """:func:`export_model` of a ``FlowModel`` checkpoint file.

    Raises:
        FileNotFoundError: no such checkpoint.
        FormatError: the file is not a FlowModel checkpoint.
        EventFlowError: scripting or the equivalence check fails.
    """
    model = load_flow_model(ckpt)
    return export_model(model, out_dir, fp16=fp16)
