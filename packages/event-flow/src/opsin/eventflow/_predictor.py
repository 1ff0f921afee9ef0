"""A trained flow network ready for streaming inference, whatever it was saved as.

:class:`FlowPredictor` hides the difference between a Lightning checkpoint (``FlowModel``), a TorchScript export
(``model_flow.ptjit`` with its ``info_flow_jit.json``) and the pretrained model shipped in the wheel. It runs one
window at a time (T = 1, B = 1) with the recurrent state carried from window to window, at any resolution: the input
is zero-padded (zero means "no events") to a multiple of the network's total stride, and the flow is cropped back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from opsin.core import get_logger
from opsin.eventflow.errors import ConfigError, FormatError

__all__ = ["FlowPredictor", "ModelInfo", "load_predictor"]

_log = get_logger(__name__)
JIT_INFO_NAME = "info_flow_jit.json"


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs to know about a trained network.

    Attributes:
        delta_t: the window length the network was trained on (us); its flow is in px per ``delta_t``.
        preprocess: the feature name (a key of the preprocessing registry).
        preprocess_kwargs: the feature's keyword arguments.
        cin: input channels.
        scales: number of pyramid levels (the network's total stride is 2**scales).
        source: where the network came from (a path or ``pretrained:<name>``), for messages and file attributes.
    """

    delta_t: int
    preprocess: str
    preprocess_kwargs: Mapping[str, Any] = field(default_factory=dict)
    cin: int = 6
    scales: int = 3
    source: str = ""


class FlowPredictor:
    """Runs a flow network window by window with its recurrent state carried over.

    Args:
        network: a ``FlowNetwork`` (eager or scripted): ``forward((T, B, C, H, W)) -> list`` of flows, coarsest first,
            and ``reset_all()``.
        info: the network's :class:`ModelInfo`.
        device: where to run (``"cpu"``, ``"cuda"``, ...).
    """

    def __init__(self, network: Any, info: ModelInfo, device: str | torch.device = "cpu") -> None:
        self.network = network
        self.info = info
        self.device = torch.device(device)
        self.network.to(self.device)
        self.network.eval()
        self.stride = 2 ** int(info.scales)
        self.reset()

    def reset(self) -> None:
        """Forget the recurrent state (the next window starts a new sequence)."""
        self.network.reset_all()

    @torch.no_grad()
    def predict(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """The flow of one window, in px per ``delta_t`` at the features' resolution.

        Args:
            features: (C, H, W) features of the window (any H, W).

        Returns:
            (2, H, W) float32 flow, u (rightwards) first.

        Raises:
            ConfigError: the features do not have the network's channel count.
        """
        x = torch.as_tensor(features, dtype=torch.float32)
        if x.ndim != 3 or x.shape[0] != self.info.cin:
            message = (
                f"features of shape {tuple(x.shape)} do not fit the network "
                f"({self.info.cin} channels of {self.info.preprocess!r} expected)"
            )
            raise ConfigError(message)
        c, h, w = x.shape
        ph = math.ceil(h / self.stride) * self.stride
        pw = math.ceil(w / self.stride) * self.stride
        if (ph, pw) != (h, w):
            x = torch.nn.functional.pad(x, (0, pw - w, 0, ph - h))
        flows = self.network(x.reshape(1, 1, c, ph, pw).to(self.device))
        finest = flows[-1].reshape(2, ph, pw)[:, :h, :w]
        out: np.ndarray = finest.float().cpu().numpy()
        return out


def _unwrap_lightning(model: Any, source: str) -> FlowPredictor:
    hp = model.hparams
    network = model.network
    scales = int(network.get_nb_scales()) if hasattr(network, "get_nb_scales") else 3
    info = ModelInfo(
        delta_t=int(hp.delta_t),
        preprocess=str(hp.preprocess),
        preprocess_kwargs=dict(hp.get("preprocess_kwargs") or {}),
        cin=int(hp.array_dim[1]),
        scales=scales,
        source=source,
    )
    return FlowPredictor(network, info)


def _from_checkpoint(path: Path, device: str) -> FlowPredictor:
    from opsin.eventflow.lightning_model import load_flow_model

    predictor = _unwrap_lightning(load_flow_model(path), str(path))
    predictor.network.to(device)
    predictor.device = torch.device(device)
    return predictor


def _from_jit(path: Path, device: str) -> FlowPredictor:
    if not path.is_file():
        message = f"{path}: no such TorchScript file (pass --jit PATH to a model_flow.ptjit written by export)"
        raise FileNotFoundError(message)
    info_path = path.with_name(JIT_INFO_NAME)
    if not info_path.is_file():
        message = f"{path}: {JIT_INFO_NAME} is missing beside it (export writes both files)"
        raise FileNotFoundError(message)
    try:
        meta = json.loads(info_path.read_text())
        network = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError, OSError) as exc:
        message = f"cannot load the TorchScript model ({' '.join(str(exc).split())[:300]})"
        raise FormatError(path, None, message) from exc
    kwargs = meta.get("network_kwargs") or {}
    info = ModelInfo(
        delta_t=int(meta["delta_t"]),
        preprocess=str(meta["preprocess"]),
        preprocess_kwargs=dict(meta.get("preprocess_kwargs") or {}),
        cin=int(meta["cin"]),
        scales=int(kwargs.get("scales", 3)),
        source=str(path),
    )
    return FlowPredictor(network, info, device)


def load_predictor(
    ckpt: str | Path | None = None, jit: str | Path | None = None, device: str = "cpu", pretrained: str | None = None
) -> FlowPredictor:
    """Load a network for inference: a checkpoint, a TorchScript export, or the pretrained model in the wheel.

    Args:
        ckpt: a ``FlowModel`` checkpoint (``.ckpt``).
        jit: a ``model_flow.ptjit`` written by ``opsin-eventflow export`` (with ``info_flow_jit.json`` beside it).
        device: where to run.
        pretrained: the name of a shipped model (default: the default pretrained model) when neither file is given.

    Returns:
        A ready :class:`FlowPredictor`.

    Raises:
        ConfigError: both ``ckpt`` and ``jit`` given.
        FileNotFoundError: a given file does not exist.
        FormatError: a given file is not a usable model.
    """
    if ckpt is not None and jit is not None:
        message = "give either --ckpt or --jit, not both"
        raise ConfigError(message)
    if ckpt is not None:
        return _from_checkpoint(Path(ckpt), device)
    if jit is not None:
        return _from_jit(Path(jit), device)
    from opsin.eventflow import pretrained as shipped

    name = pretrained or shipped.DEFAULT
    model = shipped.load(name)
    predictor = _unwrap_lightning(model, f"pretrained:{name}")
    predictor.network.to(device)
    predictor.device = torch.device(device)
    return predictor
