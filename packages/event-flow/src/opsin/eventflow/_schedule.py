"""The streaming schedule: recordings cut into chunks, dealt into B batch columns that continue in time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from opsin.eventflow.errors import ConfigError

__all__ = ["FileMetadata", "ScheduleItem", "Scheduler", "curriculum_max_consecutive_batch", "round_duration"]

_ROUND_UP_WITHIN_US = 1000


@dataclass
class FileMetadata:
    """One recording, or one chunk of it.

    Attributes:
        path: the file (features ``.h5``, or an event file).
        duration: usable duration in us (a multiple of ``delta_t * num_tbins`` once scheduled).
        delta_t: bin duration in us.
        num_tbins: bins per sample T.
        labels: optional label file or object attached by the caller.
        start_ts: where this chunk starts in the file (us).
        padding: True for the zero items that pad columns (no file is read).
    """

    path: str
    duration: int
    delta_t: int
    num_tbins: int
    labels: str | None = None
    start_ts: int = 0
    padding: bool = False

    @property
    def total_tbins_delta_t(self) -> int:
        """Duration of one sample: ``delta_t * num_tbins``."""
        return self.delta_t * self.num_tbins

    @property
    def name(self) -> str:
        """The file name."""
        return Path(self.path).name


def round_duration(duration: int, total: int) -> int:
    """Rounds down to a multiple of ``total``, or up when within 1000 us of the next multiple."""
    down = (int(duration) // total) * total
    if down + total - duration <= _ROUND_UP_WITHIN_US:
        return down + total
    return down


def curriculum_max_consecutive_batch(epoch: int, curriculum_param: float) -> int | None:
    """The curriculum law: ``max(1, int(p ** (epoch - 1)))`` for epoch < 20, else None (whole files).

    Raises:
        ConfigError: ``curriculum_param`` < 1.
    """
    if curriculum_param < 1:
        message = f"curriculum_param must be >= 1, got {curriculum_param}"
        raise ConfigError(message)
    if epoch >= 20:
        return None
    return max(1, int(curriculum_param ** (epoch - 1)))


@dataclass(frozen=True)
class ScheduleItem:
    """What item ``index`` of a schedule reads.

    Attributes:
        chunk: the chunk (its ``start_ts`` is where the column (re)starts its recurrent state).
        start: start time of the sample in the file (us).
        total: sample duration (us).
        keep_memory: 0.0 exactly at a chunk start, else 1.0.
        column: the local column (batch slot) b.
        step: the batch number s.
    """

    chunk: FileMetadata
    start: int
    total: int
    keep_memory: float
    column: int
    step: int

    @property
    def is_padding(self) -> bool:
        """Whether this item is a zero padding item."""
        return self.chunk.padding


class Scheduler:
    """Deals recordings into ``batch_size`` columns that stream consecutive samples of the same chunk.

    Item i goes to column b = i % B and step s = i // B; consecutive steps of a column are consecutive samples of
    a chunk, then of the next chunk of that column.

    Args:
        files: one :class:`FileMetadata` per recording (``duration`` is the raw duration, rounded here).
        batch_size: B, columns per rank.
        max_consecutive_batch: chunk length in samples (None: whole files).
        shuffle: shuffle the chunks with ``np.random.default_rng((seed, epoch))``.
        seed: base seed of the shuffle.
        epoch: the epoch (changes the shuffle).
        padding: pad the shorter columns with zero items up to the longest one (validation/test).
        rank: this process's rank (DDP).
        world_size: number of ranks; the global schedule has B * world_size columns.

    Raises:
        ConfigError: non-positive sizes, or rank outside [0, world_size).
    """

    def __init__(
        self,
        files: Sequence[FileMetadata],
        batch_size: int,
        max_consecutive_batch: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        padding: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size <= 0 or world_size <= 0 or not 0 <= rank < world_size:
            message = f"invalid batch_size={batch_size}, rank={rank}, world_size={world_size}"
            raise ConfigError(message)
        if max_consecutive_batch is not None and max_consecutive_batch <= 0:
            message = f"max_consecutive_batch must be >= 1 or None, got {max_consecutive_batch}"
            raise ConfigError(message)
        self.files = list(files)
        self.batch_size = int(batch_size)
        self.max_consecutive_batch = max_consecutive_batch
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.padding = padding
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.chunks = self._make_chunks()
        n_cols = self.batch_size * self.world_size
        self.columns: list[list[FileMetadata]] = [self.chunks[b::n_cols] for b in range(n_cols)]
        self.cumulative: list[np.ndarray] = [
            np.cumsum([c.duration for c in col], dtype=np.int64) for col in self.columns
        ]
        total = self.total
        steps = [int(cum[-1]) // total if cum.size else 0 for cum in self.cumulative]
        self.steps = max(steps) if padding else min(steps)

    @property
    def total(self) -> int:
        """Sample duration T * delta_t (of the first file; all files share it)."""
        return self.files[0].total_tbins_delta_t if self.files else 1

    def _make_chunks(self) -> list[FileMetadata]:
        chunks: list[FileMetadata] = []
        for f in self.files:
            total = f.total_tbins_delta_t
            if total != self.total:
                message = f"{f.path}: delta_t*num_tbins={total} differs from the other files' {self.total}"
                raise ConfigError(message)
            duration = round_duration(f.duration, total)
            if duration <= 0:
                continue
            step = duration if self.max_consecutive_batch is None else self.max_consecutive_batch * total
            for start in range(0, duration, step):
                length = min(step, duration - start)
                if length > 0:
                    chunks.append(replace(f, duration=length, start_ts=f.start_ts + start))
        if self.shuffle and chunks:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(len(chunks))
            chunks = [chunks[i] for i in order]
        return chunks

    def __len__(self) -> int:
        return self.batch_size * self.steps

    def global_column(self, column: int) -> int:
        """The index in the global (all ranks) schedule of local column ``column``."""
        return self.rank * self.batch_size + column

    def __getitem__(self, index: int) -> ScheduleItem:
        if not 0 <= index < len(self):
            message = f"schedule index {index} out of range [0, {len(self)})"
            raise IndexError(message)
        b, s = index % self.batch_size, index // self.batch_size
        gb = self.global_column(b)
        cum = self.cumulative[gb]
        total = self.total
        tau = (s + 1) * total
        if cum.size == 0 or tau > int(cum[-1]):
            ref = self.files[0]
            pad = FileMetadata("", total, ref.delta_t, ref.num_tbins, padding=True)
            return ScheduleItem(pad, 0, total, 0.0, b, s)
        j = int(np.searchsorted(cum, tau, side="left"))
        chunk = self.columns[gb][j]
        start = chunk.start_ts + tau - total - (int(cum[j]) - chunk.duration)
        keep = 0.0 if start == chunk.start_ts else 1.0
        return ScheduleItem(chunk, start, total, keep, b, s)
