"""Reference SNR/RER labels of known datasets (package data ``dataset_labels/<KIND>/<name>_<KIND>.json``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["dataset_label", "initial_label", "known_datasets"]


def known_datasets(kind: str) -> list[str]:
    """Names of datasets with a ``kind`` (``"SNR"`` or ``"RER"``) label."""
    folder = resources.files("opsin.iq.datasets").joinpath("dataset_labels", kind)
    suffix = f"_{kind}.json"
    return sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))


def dataset_label(kind: str, name: str) -> float:
    """The ``kind`` label of dataset ``name``.

    Raises:
        KeyError: unknown dataset (the message lists the known ones).
    """
    known = known_datasets(kind)
    if name not in known:
        msg = f"no {kind} label for dataset {name!r}; known datasets: {', '.join(known)}"
        raise KeyError(msg)
    path = resources.files("opsin.iq.datasets").joinpath("dataset_labels", kind, f"{name}_{kind}.json")
    return float(json.loads(path.read_text(encoding="utf-8"))[kind])


def initial_label(params: dict[str, Any], kind: str, get_initial_from_dataset: str | None) -> float:
    """The quality a modifier starts from: ``params["initial_<kind>"]``, else the dataset's ``kind`` label.

    Args:
        params: the modifier's params (``dataset`` names the default dataset).
        kind: ``"SNR"`` or ``"RER"``.
        get_initial_from_dataset: a dataset name that overrides ``params["dataset"]``.

    Raises:
        KeyError: unknown dataset (the message lists the known ones).
    """
    explicit = params.get(f"initial_{kind.lower()}")
    if explicit is not None:
        return float(explicit)
    return dataset_label(kind, get_initial_from_dataset or str(params["dataset"]))
