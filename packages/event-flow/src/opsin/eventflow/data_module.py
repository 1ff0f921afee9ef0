"""The Lightning data module of flow training, and the dense flow label loader."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from opsin.eventflow._augment import ChunkAugmentation
from opsin.eventflow._schedule import FileMetadata, curriculum_max_consecutive_batch
from opsin.eventflow.data import SequentialDataLoader, is_features_file, load_labels_stub
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io.flow_labels import FlowLabels, flow_for_interval, label_path_for, read_flow_labels
from opsin.eventflow.io.h5_features import H5FeaturesReader

__all__ = ["DEFAULTS", "FlowDataModule", "list_recordings", "load_labels_flow"]

#: Defaults of the data module (the original training configuration).
DEFAULTS: dict[str, Any] = {
    "batch_size": 4,
    "num_workers": 2,
    "data_aug": True,
    "delta_t": 50000,
    "preprocess": "event_cube",
    "array_dim": (4, 6, 240, 320),
    "preprocess_kwargs": None,
    "curriculum_param": 1.414,
}

_LABEL_CACHE: dict[str, tuple[float, FlowLabels]] = {}


def _labels(path: Path) -> FlowLabels:
    key = str(path)
    mtime = path.stat().st_mtime
    cached = _LABEL_CACHE.get(key)
    if cached is None or cached[0] != mtime:
        if len(_LABEL_CACHE) > 16:
            _LABEL_CACHE.clear()
        cached = (mtime, read_flow_labels(path))
        _LABEL_CACHE[key] = cached
    return cached[1]


def load_labels_flow(
    metadata: FileMetadata, start_time: int, duration: int, tensor: torch.Tensor
) -> tuple[list[torch.Tensor], np.ndarray]:
    """Loads dense flow labels for the T bins of a sample.

    The label file is ``X_flow.h5`` next to ``X_td.dat``, ``X.raw`` or features ``X.h5``. Bin k's label is the GT
    interpolated onto exactly ``[start_time + k*dt, start_time + (k+1)*dt)`` (dt = duration / T), i.e. in px per
    delta_t at the label resolution; it is labelled only when the GT covers that interval.

    Args:
        metadata: the chunk being read.
        start_time: sample start in the file (us).
        duration: sample duration (us).
        tensor: the sample's features (T, C, H, W) (only T is used).

    Returns:
        ``(labels, frame_is_labeled)``: T float32 tensors (2, H_l, W_l) (``torch.empty(0)`` when unlabelled; +inf
        marks invalid pixels) and a (T,) bool array.
    """
    n_t = int(tensor.shape[0])
    path = Path(metadata.path)
    label_file = label_path_for(path)
    if metadata.padding or not label_file.exists():
        return load_labels_stub(metadata, start_time, duration, tensor)
    offset = 0
    if is_features_file(path):
        with H5FeaturesReader(path) as reader:
            offset = reader.start_ts
    labels = _labels(label_file)
    dt = duration // n_t
    out: list[torch.Tensor] = []
    labeled = np.zeros(n_t, dtype=bool)
    for k in range(n_t):
        t0 = offset + start_time + k * dt
        flow = flow_for_interval(labels, t0, t0 + dt)
        if flow is None:
            out.append(torch.empty(0))
        else:
            out.append(torch.from_numpy(flow))
            labeled[k] = True
    return out, labeled


def list_recordings(folder: str | Path) -> list[Path]:
    """The recordings of a folder, sorted by name.

    Features ``.h5``, ``.dat``, ``.raw`` and event ``.h5`` files count; ``*_flow.h5`` labels and sidecars do not.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix in (".dat", ".raw") or (suffix in (".h5", ".hdf5") and not path.stem.endswith("_flow")):
            out.append(path)
    return out


def _hparam(hparams: Any, key: str) -> Any:
    if hparams is None:
        return None
    if isinstance(hparams, Mapping):
        return hparams.get(key)
    if isinstance(hparams, argparse.Namespace):
        return getattr(hparams, key, None)
    return getattr(hparams, key, None)


class FlowDataModule(pl.LightningDataModule):
    """Train/val/test loaders streaming recordings in (T, B, C, H, W) batches.

    ``setup()`` collects ``data_dir/train/*`` and ``data_dir/val/*`` (features ``.h5``, ``.dat``, ``.raw``, event
    ``.h5``); when ``test_data_dir`` is given its ``*_td.dat`` files with ``*_flow.h5`` labels become the labelled
    validation and test set. ``train_dataloader()`` applies the curriculum law at the trainer's current epoch (use
    ``reload_dataloaders_every_n_epochs=1``).

    Args:
        hparams: a dict, a Namespace or a model's hparams providing defaults for the keywords below.
        data_dir: folder with ``train/`` and ``val/`` (and optionally ``test/``).
        test_data_dir: optional folder of labelled recordings.
        batch_size: B.
        num_workers: DataLoader workers.
        data_aug: augment the training set.
        delta_t: bin duration (us).
        preprocess: preprocessing name.
        array_dim: (T, C, H, W).
        preprocess_kwargs: keyword arguments of the preprocessing.
        seed: seed of the shuffles and augmentations.
        curriculum_param: p of the curriculum law (>= 1).
        train_labels: also load ``*_flow.h5`` labels for the training files that have them, so that
            ``FlowModel`` trains on them with its supervised loss (synthetic data has exact labels); by default
            training is self-supervised and labels are only used to score validation and test.

    Raises:
        ConfigError: invalid hyper-parameters.
    """

    def __init__(
        self,
        hparams: Any = None,
        data_dir: str = "",
        test_data_dir: str = "",
        *,
        batch_size: int | None = None,
        num_workers: int | None = None,
        data_aug: bool | None = None,
        delta_t: int | None = None,
        preprocess: str | None = None,
        array_dim: Sequence[int] | None = None,
        preprocess_kwargs: dict[str, Any] | None = None,
        seed: int = 0,
        curriculum_param: float | None = None,
        train_labels: bool = False,
    ) -> None:
        super().__init__()
        given = {
            "batch_size": batch_size,
            "num_workers": num_workers,
            "data_aug": data_aug,
            "delta_t": delta_t,
            "preprocess": preprocess,
            "array_dim": array_dim,
            "preprocess_kwargs": preprocess_kwargs,
            "curriculum_param": curriculum_param,
        }
        values: dict[str, Any] = {}
        for key, default in DEFAULTS.items():
            value = given[key]
            if value is None:
                value = _hparam(hparams, key)
            values[key] = default if value is None else value
        self.data_dir = str(data_dir or _hparam(hparams, "data_dir") or "")
        self.test_data_dir = str(test_data_dir or _hparam(hparams, "test_data_dir") or "")
        self.batch_size = int(values["batch_size"])
        self.num_workers = int(values["num_workers"])
        self.data_aug = bool(values["data_aug"])
        self.delta_t = int(values["delta_t"])
        self.preprocess = str(values["preprocess"])
        self.array_dim = tuple(int(v) for v in values["array_dim"])
        self.preprocess_kwargs = dict(values["preprocess_kwargs"] or {})
        self.seed = int(seed)
        self.curriculum_param = float(values["curriculum_param"])
        self.train_labels = bool(train_labels)
        if len(self.array_dim) != 4 or self.batch_size <= 0 or self.delta_t <= 0:
            message = f"invalid array_dim={self.array_dim}, batch_size={self.batch_size} or delta_t={self.delta_t}"
            raise ConfigError(message)
        curriculum_max_consecutive_batch(0, self.curriculum_param)
        self.train_files: list[Path] = []
        self.val_files: list[Path] = []
        self.test_files: list[Path] = []

    def setup(self, stage: str | None = None) -> None:
        """Collects the train, val and test files."""
        root = Path(self.data_dir) if self.data_dir else None
        self.train_files = list_recordings(root / "train") if root else []
        self.val_files = list_recordings(root / "val") if root else []
        self.test_files = list_recordings(root / "test") if root else []
        if self.test_data_dir:
            labelled = [p for p in sorted(Path(self.test_data_dir).glob("*_td.dat")) if label_path_for(p).exists()]
            if not labelled:
                message = f"{self.test_data_dir}: no *_td.dat file with a *_flow.h5 label"
                raise ConfigError(message)
            self.val_files = labelled
            self.test_files = labelled

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def _loader(self, files: Sequence[Path], split: str, **kwargs: Any) -> SequentialDataLoader:
        if not files:
            message = f"no {split} recordings found (data_dir={self.data_dir!r}, test_data_dir={self.test_data_dir!r})"
            raise ConfigError(message)
        rank, world = self._rank()
        return SequentialDataLoader(
            files,
            self.delta_t,
            self.preprocess,
            self.array_dim,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            preprocess_kwargs=self.preprocess_kwargs,
            seed=self.seed,
            rank=rank,
            world_size=world,
            **kwargs,
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Moves the tensors of a batch dict to ``device``; ``video_infos`` stays on the host untouched."""
        if not isinstance(batch, dict):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        moved = dict(batch)
        for key in ("inputs", "mask_keep_memory", "frame_is_labeled", "is_padding"):
            if isinstance(batch.get(key), torch.Tensor):
                moved[key] = batch[key].to(device)
        if "labels" in batch:
            moved["labels"] = [[lab.to(device) for lab in row] for row in batch["labels"]]
        return moved

    def max_consecutive_batch(self, epoch: int) -> int | None:
        """The curriculum chunk length at ``epoch``."""
        return curriculum_max_consecutive_batch(epoch, self.curriculum_param)

    def train_dataloader(self) -> SequentialDataLoader:
        """The training loader: shuffled chunks of the curriculum length, augmented when ``data_aug``."""
        epoch = self._epoch()
        loader = self._loader(
            self.train_files,
            "train",
            load_labels=load_labels_flow if self.train_labels else load_labels_stub,
            shuffle=True,
            transforms=ChunkAugmentation() if self.data_aug else None,
            max_consecutive_batch=self.max_consecutive_batch(epoch),
        )
        loader.reschedule(self.max_consecutive_batch(epoch), shuffle=True, epoch=epoch)
        if len(loader) == 0:
            # Every column must hold at least one sample; training on nothing would "succeed" silently.
            _, world = self._rank()
            message = (
                f"{Path(self.data_dir) / 'train'}: {len(self.train_files)} recordings cut into "
                f"{len(loader.scheduler.chunks)} samples of {loader.scheduler.total} us give no batch of "
                f"{self.batch_size * world} columns (batch_size x processes); use longer or more recordings, "
                "or a smaller batch_size or array_dim T"
            )
            raise ConfigError(message)
        return loader

    def val_dataloader(self) -> SequentialDataLoader:
        """The validation loader: whole files, padded columns, labels when present, no augmentation."""
        return self._loader(self.val_files, "val", load_labels=load_labels_flow, padding=True)

    def test_dataloader(self) -> SequentialDataLoader:
        """The test loader (``test_data_dir``, else ``data_dir/test``, else ``data_dir/val``)."""
        return self._loader(self.test_files or self.val_files, "test", load_labels=load_labels_flow, padding=True)
