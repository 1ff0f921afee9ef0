"""Sequential streaming of recordings into batches of shape (T, B, C, H, W) whose columns continue in time.

Column b of consecutive batches continues the same recording, so a recurrent network keeps its state between
batches; ``mask_keep_memory`` is 0 exactly where a column starts a new chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from opsin.eventflow._augment import ChunkAugmentation, augmentation_seed
from opsin.eventflow._schedule import (
    FileMetadata,
    ScheduleItem,
    Scheduler,
    curriculum_max_consecutive_batch,
    round_duration,
)
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io._open import open_events
from opsin.eventflow.io._reader import EventReader
from opsin.eventflow.io.h5_features import H5FeaturesReader
from opsin.eventflow.preprocessing import downsampling_factor_for, get_preprocess_info, resize_features

__all__ = [
    "ChunkAugmentation",
    "FileMetadata",
    "LoadLabels",
    "Scheduler",
    "SequentialDataLoader",
    "SequentialDataset",
    "collate_sequences",
    "curriculum_max_consecutive_batch",
    "file_duration",
    "is_features_file",
    "load_labels_stub",
    "round_duration",
]

#: ``load_labels(metadata, start_time, duration, tensor) -> (labels[T], frame_is_labeled (T,) bool)``.
LoadLabels = Callable[[FileMetadata, int, int, torch.Tensor], tuple[list[torch.Tensor], np.ndarray]]


def load_labels_stub(
    metadata: FileMetadata, start_time: int, duration: int, tensor: torch.Tensor
) -> tuple[list[torch.Tensor], np.ndarray]:
    """No labels: T empty tensors and an all-False ``frame_is_labeled``."""
    n = int(tensor.shape[0])
    return [torch.empty(0) for _ in range(n)], np.zeros(n, dtype=bool)


def is_features_file(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 features file (a ``data`` dataset) rather than an event file."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            return "data" in fh
    except OSError:
        return False


def file_duration(path: str | Path) -> int:
    """N * delta_t for a features file, the last event's timestamp for an event file (us)."""
    if is_features_file(path):
        with H5FeaturesReader(path) as reader:
            if reader.mode != "delta_t":
                message = f"{path}: features in mode {reader.mode!r} cannot be streamed (only 'delta_t')"
                raise ConfigError(message)
            return reader.duration
    events = open_events(path)
    try:
        return events.duration_us
    finally:
        events.close()


class SequentialDataset(Dataset[tuple[Any, ...]]):
    """Item i of a :class:`Scheduler`, loaded and preprocessed: a pure function of (schedule, i).

    Args:
        scheduler: the schedule.
        preprocess: the preprocessing name (must match features files).
        array_dim: (T, C, H, W) of a sample.
        load_labels: the label loader.
        preprocess_kwargs: keyword arguments of the preprocessing (event files).
        transforms: an augmentation ``fn(inputs, labels, seed) -> (inputs, labels)`` (training only), or None.
        seed: base seed of the augmentation.

    Items are ``(inputs (T,C,H,W) float32 tensor, labels[T], keep_memory, frame_is_labeled (T,), (metadata, start,
    total))``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        preprocess: str,
        array_dim: Sequence[int],
        load_labels: LoadLabels = load_labels_stub,
        preprocess_kwargs: dict[str, Any] | None = None,
        transforms: Callable[..., Any] | None = None,
        seed: int = 0,
    ) -> None:
        if len(array_dim) != 4:
            message = f"array_dim must be (T, C, H, W), got {tuple(array_dim)}"
            raise ConfigError(message)
        self.scheduler = scheduler
        self.preprocess = preprocess
        self.info = get_preprocess_info(preprocess, preprocess_kwargs)
        self.array_dim = tuple(int(v) for v in array_dim)
        if self.array_dim[1] != self.info["cin"]:
            message = f"array_dim C={self.array_dim[1]} does not match {preprocess!r} ({self.info['cin']} channels)"
            raise ConfigError(message)
        self.load_labels = load_labels
        self.transforms = transforms
        self.seed = int(seed)
        self._open: dict[str, EventReader | H5FeaturesReader] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = {}
        return state

    def __len__(self) -> int:
        return len(self.scheduler)

    def _reader(self, path: str) -> EventReader | H5FeaturesReader:
        if path not in self._open:
            self._open[path] = H5FeaturesReader(path) if is_features_file(path) else open_events(path)
        return self._open[path]

    def _load(self, item: ScheduleItem) -> np.ndarray:
        n_t, c, h, w = self.array_dim
        reader = self._reader(item.chunk.path)
        if isinstance(reader, H5FeaturesReader):
            if reader.preprocess != self.preprocess:
                message = f"{reader.path}: features are {reader.preprocess!r}, the loader expects {self.preprocess!r}"
                raise ConfigError(message)
            if reader.delta_t != item.chunk.delta_t:
                message = f"{reader.path}: delta_t {reader.delta_t} differs from the loader's {item.chunk.delta_t}"
                raise ConfigError(message)
            rows = reader.read(item.start, item.total)
            if rows.shape[1] != c:
                message = f"{reader.path}: {rows.shape[1]} channels, array_dim expects {c}"
                raise ConfigError(message)
            out = np.zeros((n_t, c, rows.shape[2], rows.shape[3]), dtype=np.float32)
            out[: rows.shape[0]] = rows
            return resize_features(out, h, w)
        try:
            ds = downsampling_factor_for((reader.height, reader.width), (h, w))
        except ConfigError as exc:
            message = f"{reader.path}: {exc} (array_dim asks for {w}x{h})"
            raise ConfigError(message) from None
        reader.seek_time(item.start)
        events = reader.load_delta_t(item.total)
        events["t"] -= item.start
        out = np.zeros(self.array_dim, dtype=np.float32)
        self.info["fn"](events, out, item.total, ds, True, **self.info["kwargs"])
        return out

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self.scheduler[index]
        n_t = self.array_dim[0]
        if item.is_padding:
            inputs = torch.zeros(self.array_dim, dtype=torch.float32)
            labels, labeled = load_labels_stub(item.chunk, item.start, item.total, inputs)
            return inputs, labels, 0.0, labeled, (item.chunk, item.start, item.total)
        array = self._load(item)
        labels, labeled = self.load_labels(item.chunk, item.start, item.total, torch.from_numpy(array))
        if self.transforms is not None:
            seed = augmentation_seed(item.chunk.path, item.chunk.start_ts, self.scheduler.epoch, self.seed)
            np_labels = [lab.numpy() if lab.numel() else None for lab in labels]
            array, np_labels = self.transforms(array, np_labels, seed)
            labels = [
                torch.from_numpy(np.ascontiguousarray(lab)) if lab is not None else torch.empty(0) for lab in np_labels
            ]
        if len(labels) != n_t:
            message = f"load_labels returned {len(labels)} labels for {n_t} bins"
            raise ConfigError(message)
        inputs = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return inputs, labels, item.keep_memory, np.asarray(labeled, dtype=bool), (item.chunk, item.start, item.total)


def collate_sequences(items: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """Stacks B items into one batch dict.

    Keys: ``inputs`` (T,B,C,H,W), ``labels`` (``labels[t][b]``), ``mask_keep_memory`` (B,1,1,1),
    ``frame_is_labeled`` (T,B), ``video_infos`` (B tuples) and ``is_padding`` (B,).
    """
    inputs = torch.stack([it[0] for it in items], dim=1)
    n_t = inputs.shape[0]
    labels = [[it[1][t] for it in items] for t in range(n_t)]
    keep = torch.tensor([float(it[2]) for it in items], dtype=torch.float32).view(-1, 1, 1, 1)
    labeled = torch.from_numpy(np.stack([it[3] for it in items], axis=1))
    infos = tuple(it[4] for it in items)
    padding = torch.tensor([bool(it[4][0].padding) for it in items], dtype=torch.bool)
    return {
        "inputs": inputs,
        "labels": labels,
        "mask_keep_memory": keep,
        "frame_is_labeled": labeled,
        "video_infos": infos,
        "is_padding": padding,
    }


class SequentialDataLoader:
    """Streams recordings into batches whose columns continue in time (a wrapper of a torch ``DataLoader``).

    Args:
        files: features ``.h5`` files or event files.
        delta_t: bin duration (us).
        preprocess: the preprocessing name.
        array_dim: (T, C, H, W).
        load_labels: the label loader (default: none).
        durations: durations of ``files`` in us (default: read from the files).
        batch_size: B.
        num_workers: DataLoader workers (the order is kept: items are pure functions of the index).
        preprocess_kwargs: keyword arguments of the preprocessing.
        shuffle: shuffle the chunks at each :meth:`reschedule`.
        padding: pad the columns to the longest (validation/test).
        transforms: the augmentation (training only), e.g. :class:`ChunkAugmentation`.
        seed: seed of the shuffle and the augmentation.
        max_consecutive_batch: chunk length in batches (None: whole files).
        rank: DDP rank.
        world_size: DDP world size.

    Raises:
        ConfigError: no files, inconsistent shapes or an unknown preprocessing.
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        delta_t: int,
        preprocess: str,
        array_dim: Sequence[int],
        load_labels: LoadLabels = load_labels_stub,
        durations: Sequence[int] | None = None,
        batch_size: int = 4,
        num_workers: int = 2,
        preprocess_kwargs: dict[str, Any] | None = None,
        shuffle: bool = False,
        padding: bool = False,
        transforms: Callable[..., Any] | None = None,
        seed: int = 0,
        max_consecutive_batch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not files:
            message = "SequentialDataLoader needs at least one file"
            raise ConfigError(message)
        if durations is not None and len(durations) != len(files):
            message = f"{len(durations)} durations for {len(files)} files"
            raise ConfigError(message)
        self.files = [str(f) for f in files]
        self.delta_t = int(delta_t)
        self.preprocess = preprocess
        self.array_dim = tuple(int(v) for v in array_dim)
        self.load_labels = load_labels
        self.durations = (
            [int(d) for d in durations] if durations is not None else [file_duration(f) for f in self.files]
        )
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.preprocess_kwargs = dict(preprocess_kwargs or {})
        self.shuffle = shuffle
        self.padding = padding
        self.transforms = transforms
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.metadata = [
            FileMetadata(f, d, self.delta_t, self.array_dim[0]) for f, d in zip(self.files, self.durations)
        ]
        self.reschedule(max_consecutive_batch, shuffle=shuffle, epoch=0)

    def reschedule(self, max_consecutive_batch: int | None, shuffle: bool = True, epoch: int = 0) -> None:
        """Rebuilds the schedule (chunk length, shuffle and epoch) from the files."""
        self.max_consecutive_batch = max_consecutive_batch
        self.epoch = int(epoch)
        self.scheduler = Scheduler(
            self.metadata,
            self.batch_size,
            max_consecutive_batch,
            shuffle,
            self.seed,
            self.epoch,
            self.padding,
            self.rank,
            self.world_size,
        )
        self.dataset = SequentialDataset(
            self.scheduler,
            self.preprocess,
            self.array_dim,
            self.load_labels,
            self.preprocess_kwargs,
            self.transforms,
            self.seed,
        )
        self.dataloader: DataLoader[Any] = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_sequences,
            drop_last=False,
        )

    def __len__(self) -> int:
        return self.scheduler.steps

    def __iter__(self) -> Any:
        return iter(self.dataloader)
