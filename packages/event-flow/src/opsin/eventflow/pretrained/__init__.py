"""Flow models shipped inside the wheel, ready to use without training.

``load(name)`` returns a :class:`~opsin.eventflow.lightning_model.FlowModel` in eval mode on the CPU::

    from opsin.eventflow import pretrained

    model = pretrained.load()            # the default model
    flows = model(features)              # (T, B, 6, H, W) event_cube features -> flows, coarsest first

The model card (training data and command, seed, wall time, accuracy) is in the package README. Every model here
was trained on synthetic data from ``opsin-eventflow synth`` only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsin.eventflow.lightning_model import FlowModel

__all__ = ["DEFAULT", "MODELS", "available", "checkpoint_path", "load"]

#: The model used when none is named (by ``opsin-eventflow infer`` and ``demo`` without ``--ckpt``/``--jit``).
DEFAULT = "eminet16-synth"

#: name -> (checkpoint file inside this package, one-line description)
MODELS: dict[str, tuple[str, str]] = {
    "eminet16-synth": (
        "eminet16_synth.ckpt",
        "eminet, base 16, LSTM, event_cube (6 channels), delta_t 50 ms, trained on opsin-eventflow synth data",
    ),
}


def available() -> list[str]:
    """Names of the shipped models whose file is present."""
    return sorted(name for name in MODELS if _file(name).is_file())


def _file(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(MODELS[name][0])))


def checkpoint_path(name: str = DEFAULT) -> Path:
    """The checkpoint file of a shipped model.

    Raises:
        KeyError: unknown name (the message lists the names).
        FileNotFoundError: the file is missing from this installation.
    """
    if name not in MODELS:
        message = f"unknown pretrained model {name!r}; available: {', '.join(sorted(MODELS))}"
        raise KeyError(message)
    path = _file(name)
    if not path.is_file():
        message = f"the pretrained model {name!r} is missing from this installation ({path}); reinstall the package"
        raise FileNotFoundError(message)
    return path


def load(name: str = DEFAULT, map_location: str = "cpu") -> FlowModel:
    """Load a shipped model, ready for inference (eval mode).

    Args:
        name: one of :data:`MODELS` (default :data:`DEFAULT`).
        map_location: the device to load the weights on.

    Returns:
        The :class:`~opsin.eventflow.lightning_model.FlowModel`.

    Raises:
        KeyError: unknown name.
        FileNotFoundError: the file is missing from this installation.
    """
    from opsin.eventflow.lightning_model import FlowModel

    model = FlowModel.load_from_checkpoint(str(checkpoint_path(name)), map_location=map_location)
    model.eval()
    return model
