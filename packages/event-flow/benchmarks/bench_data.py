"""Data-side throughput of opsin-event-flow: decoders, event_cube, simulator, precompute.

Prints one markdown table; every ratio compares our code with an anchor measured in the same run.
Run from the repository root: ``python packages/event-flow/benchmarks/bench_data.py [--quick]``.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from opsin.eventflow import EVENT_CD
from opsin.eventflow._precompute import PrecomputeJob, precompute_file
from opsin.eventflow.io import DatReader, H5FeaturesReader, read_evt2, write_dat, write_evt2, write_features
from opsin.eventflow.preprocessing import event_cube
from opsin.eventflow.simulator import EventSimulator

H, W = 240, 320


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def make_events(n: int, seed: int = 0) -> np.ndarray:
    gen = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EVENT_CD)
    ev["x"] = gen.integers(0, W, n)
    ev["y"] = gen.integers(0, H, n)
    ev["p"] = gen.integers(0, 2, n)
    ev["t"] = np.sort(gen.integers(0, n // 2, n))  # ~2 Mev/s
    return ev


def dat_python_loop(path: Path, limit: int) -> int:
    data = path.read_bytes()
    offset = data.index(b"% Width")
    offset = data.index(b"\n", offset) + 3
    out = []
    for i in range(limit):
        t, w = struct.unpack_from("<II", data, offset + 8 * i)
        out.append((w & 0x3FFF, (w & 0x0FFFC000) >> 14, (w >> 28) & 1, t))
    return len(out)


def dat_frombuffer(path: Path) -> np.ndarray:
    data = path.read_bytes()
    offset = data.index(b"\n", data.index(b"% Width")) + 3
    rec = np.frombuffer(data, dtype=[("t", "<u4"), ("w", "<u4")], offset=offset)
    out = np.empty(rec.size, dtype=EVENT_CD)
    out["x"] = rec["w"] & 0x3FFF
    out["y"] = (rec["w"] & 0x0FFFC000) >> 14
    out["p"] = (rec["w"] >> 28) & 1
    out["t"] = rec["t"]
    return out


def evt2_python_loop(path: Path, limit: int) -> int:
    data = path.read_bytes()
    offset = data.index(b"% end\n") + 6
    high, out = -1, []
    for i in range(limit):
        (w,) = struct.unpack_from("<I", data, offset + 4 * i)
        kind = w >> 28
        if kind == 8:
            high = (w & 0x0FFFFFFF) << 6
        elif kind <= 1 and high >= 0:
            out.append(((w >> 11) & 0x7FF, w & 0x7FF, kind, high + ((w >> 22) & 0x3F)))
    return len(out)


def evt2_frombuffer(path: Path) -> np.ndarray:
    data = path.read_bytes()
    offset = data.index(b"% end\n") + 6
    words = np.frombuffer(data, dtype="<u4", offset=offset)
    cd = words[(words >> 28) <= 1]
    return np.stack([(cd >> 11) & 0x7FF, cd & 0x7FF, cd >> 28, (cd >> 22) & 0x3F])


def cube_add_at(ev: np.ndarray, out: np.ndarray, total: int) -> None:
    n_micro = out.shape[0] * out.shape[1] // 2
    view = out.reshape(n_micro, 2, H, W)
    tau = ev["t"] * n_micro / total - 0.5
    left = np.floor(tau).astype(np.int64)
    wr = tau - left
    x, y, p = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["p"].astype(np.int64)
    for bins, weight in ((left, 1 - wr), (left + 1, wr)):
        ok = (bins >= 0) & (bins < n_micro)
        np.add.at(view, (bins[ok], p[ok], y[ok], x[ok]), 0.2 * weight[ok])
    np.clip(out, 0, 1, out=out)


def sim_python_loop(frames: list[np.ndarray], crop: int) -> int:
    """Per-pixel reference of the clean simulator (crop x crop pixels)."""
    l_ref = np.log(frames[0][:crop, :crop] / 255 + 1e-5)
    l_prev = l_ref.copy()
    n = 0
    for k, frame in enumerate(frames[1:], start=1):
        l_now = np.log(frame[:crop, :crop] / 255 + 1e-5)
        for yy in range(crop):
            for xx in range(crop):
                delta = l_now[yy, xx] - l_ref[yy, xx]
                sign = 1 if delta > 0 else -1
                count = int(abs(delta) // 0.2)
                for j in range(1, count + 1):
                    level = l_ref[yy, xx] + j * sign * 0.2
                    slope = l_now[yy, xx] - l_prev[yy, xx]
                    frac = min(max((level - l_prev[yy, xx]) / slope, 0), 1) if slope else 1.0
                    _ = (k - 1 + frac) * 1000
                    n += 1
                l_ref[yy, xx] += count * sign * 0.2
        l_prev = l_now
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller inputs (< 2 min)")
    args = parser.parse_args()
    n = 1_000_000 if args.quick else 5_000_000
    loop_n = 100_000 if args.quick else 300_000
    repeat = 2 if args.quick else 3
    rows: list[tuple[str, str, float, str, float]] = []
    ev = make_events(n)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dat = root / "bench_td.dat"
        write_dat(dat, ev, H, W, date="2000-01-01 00:00:00")
        ours = best_of(lambda: DatReader(dat).load_all(), repeat)
        loop = best_of(lambda: dat_python_loop(dat, loop_n), 1) * n / loop_n
        frombuf = best_of(lambda: dat_frombuffer(dat), repeat)
        rows.append(("DAT decode", "Mev/s", n / ours / 1e6, "per-record Python loop", n / loop / 1e6))
        rows.append(("DAT decode", "Mev/s", n / ours / 1e6, "np.frombuffer (no unwrap)", n / frombuf / 1e6))

        raw = root / "bench.raw"
        write_evt2(raw, ev, H, W)
        ours = best_of(lambda: read_evt2(raw), repeat)
        n_words = (raw.stat().st_size - 100) // 4
        loop = best_of(lambda: evt2_python_loop(raw, loop_n), 1) * n_words / loop_n
        frombuf = best_of(lambda: evt2_frombuffer(raw), repeat)
        rows.append(("EVT2 decode", "Mev/s", n / ours / 1e6, "per-word Python loop", n / loop / 1e6))
        rows.append(("EVT2 decode", "Mev/s", n / ours / 1e6, "np.frombuffer (no time base)", n / frombuf / 1e6))

        total = int(ev["t"][-1]) + 1
        out = np.zeros((1, 6, H, W), np.float32)
        ours = best_of(lambda: event_cube(ev, out, total), repeat)
        ref = np.zeros_like(out)
        addat = best_of(lambda: cube_add_at(ev, ref, total), 1)
        rows.append(("event_cube 240x320", "Mev/s", n / ours / 1e6, "np.add.at scatter", n / addat / 1e6))

        gen = np.random.default_rng(1)
        xs = np.arange(W + 64, dtype=np.float64)
        tex = 128 + 100 * np.sin(xs[None, :] / 4.0 + gen.normal(0, 0.3, (H, 1)))
        n_frames = 40 if args.quick else 120
        frames = [np.ascontiguousarray(tex[:, int(k * 0.5) : int(k * 0.5) + W]) for k in range(n_frames)]

        def simulate() -> None:
            sim = EventSimulator(H, W, sigma_threshold=0.0, seed=0)
            for k, frame in enumerate(frames):
                sim.image_callback(frame, k * 1000)
            sim.get_events()

        ours = best_of(simulate, repeat)
        crop = 32
        loop = best_of(lambda: sim_python_loop(frames, crop), 1) * (H * W) / (crop * crop)
        rows.append(("simulator 240x320", "frames/s", n_frames / ours, "per-pixel Python loop", n_frames / loop))

        feats = root / "features"

        def precompute() -> None:
            precompute_file(PrecomputeJob(str(dat), str(feats), "event_cube", 50_000, overwrite=True))

        ours = best_of(precompute, 1)
        decode = best_of(lambda: DatReader(dat).load_all(), repeat)
        rows.append(("precompute DAT->event_cube h5", "Mev/s", n / ours / 1e6, "DAT decode alone", n / decode / 1e6))
        with H5FeaturesReader(feats / "bench.h5") as reader:
            data = reader.read_rows(0, reader.num_frames)
        n_rows = data.shape[0]
        write_only = best_of(lambda: write_features(root / "w.h5", data, "event_cube", 50_000, H, W), 1)
        rows.append(
            ("precompute rows (6x240x320)", "rows/s", n_rows / ours, "h5py gzip write alone", n_rows / write_only)
        )

    print(f"\n### opsin-event-flow data side ({n:,} events{', quick' if args.quick else ''})\n")
    print("| task | unit | ours | anchor | anchor value | ours / anchor |")
    print("|---|---|---:|---|---:|---:|")
    for task, unit, value, anchor, ref_value in rows:
        print(f"| {task} | {unit} | {value:,.2f} | {anchor} | {ref_value:,.2f} | {value / ref_value:,.2f}x |")


if __name__ == "__main__":
    main()
