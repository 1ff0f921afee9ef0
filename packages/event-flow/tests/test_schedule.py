from __future__ import annotations

import itertools

import pytest

from opsin.eventflow import ConfigError
from opsin.eventflow._schedule import FileMetadata, Scheduler, curriculum_max_consecutive_batch, round_duration

DT, T = 10_000, 2
TOTAL = DT * T


def files(durations):
    return [FileMetadata(f"/data/rec{i}.h5", d, DT, T) for i, d in enumerate(durations)]


def test_round_duration_rule():
    assert round_duration(59_000, TOTAL) == 60_000  # within 1000 us of the next multiple: up
    assert round_duration(58_999, TOTAL) == 40_000  # else down
    assert round_duration(40_000, TOTAL) == 40_000


def test_curriculum_law():
    assert [curriculum_max_consecutive_batch(e, 1.414) for e in range(12)] == [1, 1, 1, 1, 2, 3, 5, 7, 11, 15, 22, 31]
    assert curriculum_max_consecutive_batch(19, 1.414) is not None
    assert curriculum_max_consecutive_batch(20, 1.414) is None
    assert curriculum_max_consecutive_batch(5, 1.0) == 1
    with pytest.raises(ConfigError, match=">= 1"):
        curriculum_max_consecutive_batch(0, 0.9)


def check_invariants(sched: Scheduler):
    b_size = sched.batch_size
    by_column = {}
    for i in range(len(sched)):
        item = sched[i]
        assert item.column == i % b_size
        assert item.step == i // b_size
        by_column.setdefault(item.column, []).append(item)
    for items in by_column.values():
        for prev, cur in itertools.pairwise(items):
            if cur.is_padding:
                continue
            chunk = cur.chunk
            # a sample never leaves its chunk (hence never mixes recordings)
            assert chunk.start_ts <= cur.start
            assert cur.start + cur.total <= chunk.start_ts + chunk.duration
            # keep_memory is 0 exactly at chunk starts
            assert (cur.keep_memory == 0.0) == (cur.start == chunk.start_ts)
            if cur.keep_memory == 1.0:
                # consecutive in time, same chunk as the previous step of this column
                assert prev.chunk == chunk
                assert cur.start == prev.start + cur.total
        first = items[0]
        assert first.keep_memory == 0.0  # every epoch starts each column at a chunk start
    return by_column


def test_whole_files_stream_in_columns():
    sched = Scheduler(files([100_000, 60_000, 81_000]), batch_size=2)
    # columns: [rec0, rec2] (100 ms + 80 ms = 9 samples) and [rec1] (3 samples): length = 2 * 3
    assert len(sched) == 6
    assert sched.steps == 3
    by_col = check_invariants(sched)
    assert [it.start for it in by_col[0]] == [0, 20_000, 40_000]
    assert [it.keep_memory for it in by_col[0]] == [0.0, 1.0, 1.0]


def test_chunking_and_shuffle_are_deterministic():
    fs = files([200_000, 120_000, 80_000, 160_000])
    a = Scheduler(fs, batch_size=3, max_consecutive_batch=2, shuffle=True, seed=5, epoch=1)
    b = Scheduler(fs, batch_size=3, max_consecutive_batch=2, shuffle=True, seed=5, epoch=1)
    c = Scheduler(fs, batch_size=3, max_consecutive_batch=2, shuffle=True, seed=5, epoch=2)
    assert a.chunks == b.chunks
    assert a.chunks != c.chunks
    assert all(ch.duration <= 2 * TOTAL for ch in a.chunks)
    assert sum(ch.duration for ch in a.chunks) == 560_000
    check_invariants(a)
    resets = sum(a[i].keep_memory == 0.0 for i in range(len(a)))
    assert resets >= len(a) // 2  # chunks of 2 samples: a reset at least every other step


def test_padding_extends_to_the_longest_column():
    sched = Scheduler(files([100_000, 40_000]), batch_size=2, padding=True)
    assert sched.steps == 5
    assert len(sched) == 10
    pads = [sched[i] for i in range(len(sched)) if sched[i].is_padding]
    assert len(pads) == 3
    assert all(p.column == 1 and p.keep_memory == 0.0 for p in pads)
    check_invariants(sched)
    unpadded = Scheduler(files([100_000, 40_000]), batch_size=2)
    assert unpadded.steps == 2


def test_ddp_ranks_are_disjoint_and_equal_length():
    fs = files([100_000, 60_000, 140_000, 80_000, 120_000])
    ranks = [
        Scheduler(fs, batch_size=2, max_consecutive_batch=3, shuffle=True, seed=1, rank=r, world_size=2)
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) > 0
    seen = [set() for _ in ranks]
    for r, sched in enumerate(ranks):
        check_invariants(sched)
        for i in range(len(sched)):
            item = sched[i]
            seen[r].add((item.chunk.path, item.start))
    assert not seen[0] & seen[1]
    assert ranks[0].chunks == ranks[1].chunks  # one global schedule
    with pytest.raises(ConfigError):
        Scheduler(fs, batch_size=2, rank=2, world_size=2)


def test_mismatched_sample_lengths_are_refused():
    with pytest.raises(ConfigError, match="differs"):
        Scheduler([FileMetadata("a", 100_000, DT, T), FileMetadata("b", 100_000, DT, 3)], batch_size=1)
