"""Event decoding speed of opsin-event-flow next to expelliarmus (a C reader), on the same files in the same run.

Files: a generated DAT file of 5 M events (1 M with ``--quick``) and the two real Prophesee recordings of the shared
fixtures (EVT 2.0 and EVT 3.0; found through ``OPSIN_FIXTURES``, default ``<repo>/../shared/fixtures``). Each
reader decodes each file once to warm up, then ``--runs`` times, alternating with the other reader; the table shows
the median rate. Rates use the process's CPU time (user + system, page faults included): both readers are
single-threaded, and CPU time does not count the time other processes on a shared machine take.
expelliarmus's EVT 3.0 timestamps are wrong on the fixture file (it counts every TIME_LOW step back as a wrap of
the 12-bit counter), so that row compares speed and x, y, p only.

Run from the repository root: ``python packages/event-flow/benchmarks/bench_decode.py [--quick] [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from opsin.eventflow import EVENT_CD
from opsin.eventflow.io import read_dat, read_evt2, read_evt3, write_dat

ROOT = Path(__file__).resolve().parents[3]
H, W = 720, 1280


def fixtures_root() -> Path:
    return Path(os.environ.get("OPSIN_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def make_dat(path: Path, n: int) -> None:
    """A sorted 1280x720 recording at about 10 Mev/s."""
    gen = np.random.default_rng(0)
    ev = np.zeros(n, dtype=EVENT_CD)
    ev["x"] = gen.integers(0, W, n)
    ev["y"] = gen.integers(0, H, n)
    ev["p"] = gen.integers(0, 2, n)
    ev["t"] = np.sort(gen.integers(0, n // 10, n))
    write_dat(path, ev, H, W, date="2000-01-01 00:00:00")


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    out = fn()
    seconds = time.process_time() - start
    del out  # freed before the next call, for both readers alike
    return seconds


def expelliarmus_reader(encoding: str) -> Callable[[Path], np.ndarray] | None:
    try:
        from expelliarmus import Wizard
    except ImportError:
        return None
    wizard = Wizard(encoding=encoding)
    return lambda path: wizard.read(path)


def same(ours: np.ndarray, theirs: np.ndarray, fields: str) -> bool:
    return ours.shape == theirs.shape and all(np.array_equal(ours[f], theirs[f]) for f in fields)


def compare(
    label: str, path: Path, ours: Callable[[Path], np.ndarray], encoding: str, runs: int, timestamps_ok: bool
) -> tuple[str, int, float, float | None, str]:
    theirs = expelliarmus_reader(encoding)
    events = ours(path)
    if theirs is None:
        mine = [cpu_seconds(lambda: ours(path)) for _ in range(runs)]
        return label, events.size, events.size / statistics.median(mine) / 1e6, None, "expelliarmus not installed"
    reference = theirs(path)
    if not timestamps_ok:
        verdict = "timestamps differ: expelliarmus EVT3 bug" if same(events, reference, "xyp") else "no"
        if same(events, reference, "xypt"):
            verdict = "yes"
    else:
        verdict = "yes" if same(events, reference, "xypt") else "no"
    mine, other = [], []
    for _ in range(runs):
        mine.append(cpu_seconds(lambda: ours(path)))
        other.append(cpu_seconds(lambda: theirs(path)))
    rate = events.size / statistics.median(mine) / 1e6
    anchor = reference.size / statistics.median(other) / 1e6
    return label, events.size, rate, anchor, verdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a 1 M-event DAT file instead of 5 M")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per reader and file (median shown)")
    args = parser.parse_args()
    n = 1_000_000 if args.quick else 5_000_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dat = Path(tmp) / "bench_td.dat"
        make_dat(dat, n)
        rows.append(compare(f"generated DAT ({n // 1_000_000} M events)", dat, read_dat, "dat", args.runs, True))
    samples = fixtures_root() / "prophesee-raw-samples"
    skipped = ""
    if samples.is_dir():
        evt2, evt3 = samples / "evt2_sample.raw", samples / "evt3_sample.raw"
        rows.append(compare("evt2_sample.raw (EVT 2.0)", evt2, lambda p: read_evt2(p)[0], "evt2", args.runs, True))
        rows.append(compare("evt3_sample.raw (EVT 3.0)", evt3, lambda p: read_evt3(p)[0], "evt3", args.runs, False))
    else:
        skipped = f"\n(real recordings skipped: {samples} not found; set OPSIN_FIXTURES)\n"

    print(f"\n### opsin-event-flow decoding next to expelliarmus (median of {args.runs} runs, CPU time)\n")
    print("| file | events | ours (Mev/s) | expelliarmus (Mev/s) | ratio | results equal |")
    print("|---|---:|---:|---:|---:|---|")
    for label, count, rate, anchor, verdict in rows:
        anchor_text = f"{anchor:,.1f}" if anchor is not None else "n/a"
        ratio = f"{rate / anchor:.2f}x" if anchor is not None else "n/a"
        print(f"| {label} | {count:,} | {rate:,.1f} | {anchor_text} | {ratio} | {verdict} |")
    print(skipped)


if __name__ == "__main__":
    main()
