"""Synthetic recordings with exact dense ground-truth flow: textured planes under known homography trajectories.

Frames are rendered with ``cv2.warpPerspective`` (reflected borders: an infinite texture) at times chosen so that no
pixel moves more than 0.5 px between frames, plus one frame at every bin edge, and go through
:class:`~opsin.eventflow.simulator.EventSimulator`. The ground truth of bin [t_k, t_k + dt) is
g_k(x) = pi(H(t_k + dt) H(t_k)^-1 x~) - x at pixel centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from opsin.core import atomic_write_text, derive_seed, dumps_json, get_logger, progress, rng
from opsin.eventflow._motion import AffineMotion, HomographyMotion, Motion, PiecewiseMotion, centring
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io.dat import DatWriter
from opsin.eventflow.io.evt2 import write_evt2
from opsin.eventflow.io.flow_labels import write_flow_labels
from opsin.eventflow.io.h5_events import write_h5_events
from opsin.eventflow.simulator import PRESETS, EventSimulator

__all__ = [
    "MOTIONS",
    "TEXTURES",
    "AffineMotion",
    "HomographyMotion",
    "Motion",
    "PiecewiseMotion",
    "SequenceSpec",
    "frame_times",
    "generate_sequence",
    "gt_flow",
    "make_dataset",
    "make_texture",
    "max_displacement",
    "random_motion",
    "render",
    "split_counts",
]

_log = get_logger("opsin.eventflow.synthetic")
TEXTURES = ("noise", "blobs", "checker", "image")
MOTIONS = ("affine", "homography", "piecewise")
_DAT_DATE = "2000-01-01 00:00:00"


def _stretch(img: np.ndarray, lo: float = 10.0, hi: float = 245.0) -> np.ndarray:
    a, b = np.percentile(img, [1, 99])
    return np.clip((img - a) / max(b - a, 1e-9), 0, 1) * (hi - lo) + lo


def make_texture(
    kind: str, height: int, width: int, generator: np.random.Generator, image_path: str | Path | None = None
) -> np.ndarray:
    """A float64 texture (0-255) of twice the sensor size.

    Args:
        kind: ``noise`` (blurred white noise), ``blobs`` (discs and rectangles), ``checker`` (rotated checkerboard,
            random period) or ``image`` (a greyscale file given by ``image_path``).
        height: sensor height.
        width: sensor width.
        generator: the random generator.
        image_path: the image for ``kind="image"``.

    Raises:
        ConfigError: unknown kind or unreadable image.
    """
    th, tw = 2 * height, 2 * width
    if kind == "noise":
        tex = cv2.GaussianBlur(generator.normal(0, 1, (th, tw)), (0, 0), 2.0)
        return _stretch(tex)
    if kind == "blobs":
        tex = np.full((th, tw), float(generator.uniform(60, 190)))
        n = max(8, th * tw // 300)
        for _ in range(n):
            grey = float(generator.uniform(10, 245))
            cx, cy = int(generator.integers(0, tw)), int(generator.integers(0, th))
            size = int(generator.integers(2, max(4, min(th, tw) // 6)))
            if generator.random() < 0.5:
                cv2.circle(tex, (cx, cy), size, grey, -1, lineType=cv2.LINE_AA)
            else:
                cv2.rectangle(tex, (cx - size, cy - size), (cx + size, cy + size), grey, -1, lineType=cv2.LINE_AA)
        return cv2.GaussianBlur(tex, (0, 0), 0.8)
    if kind == "checker":
        period = float(generator.uniform(6, 16))
        angle = float(generator.uniform(0, math.pi))
        ys, xs = np.mgrid[0:th, 0:tw].astype(np.float64)
        u = xs * math.cos(angle) + ys * math.sin(angle)
        v = -xs * math.sin(angle) + ys * math.cos(angle)
        tex = ((np.floor(u / period) + np.floor(v / period)) % 2) * 200 + 30
        return cv2.GaussianBlur(tex, (0, 0), 0.8)
    if kind == "image":
        img = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE) if image_path else None
        if img is None:
            message = f"texture image {image_path!r} cannot be read"
            raise ConfigError(message)
        scale = max(th / img.shape[0], tw / img.shape[1], 1.0)
        img = cv2.resize(
            img,
            (math.ceil(img.shape[1] * scale), math.ceil(img.shape[0] * scale)),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        return img.astype(np.float64)
    message = f"unknown texture {kind!r}; choices: {TEXTURES}"
    raise ConfigError(message)


def render(
    texture: np.ndarray, homography: np.ndarray, height: int, width: int, supersample: bool = False
) -> np.ndarray:
    """Renders the texture seen through ``homography`` (texture -> image) as a float32 (height, width) frame.

    Values stay within the texture's range: near a homography's horizon OpenCV can return garbage far outside it,
    which would otherwise reach the simulator as huge contrasts.
    """
    tex = texture.astype(np.float32, copy=False)
    if not supersample:
        frame = cv2.warpPerspective(
            tex, homography, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
    else:
        up = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
        big = cv2.warpPerspective(
            tex, up @ homography, (2 * width, 2 * height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        frame = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(frame, tex.min(), tex.max(), out=frame)


def _project(matrix: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    den = matrix[2, 0] * xs + matrix[2, 1] * ys + matrix[2, 2]
    return (
        (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]) / den,
        (matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]) / den,
    )


def gt_flow(motion: Motion, t0_us: float, t1_us: float, height: int, width: int) -> np.ndarray:
    """Exact flow (2, H, W) float32 of [t0, t1): pi(H(t1) H(t0)^-1 x~) - x at every pixel centre (float64 math)."""
    rel = motion.matrix(t1_us) @ np.linalg.inv(motion.matrix(t0_us))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    px, py = _project(rel, xs, ys)
    return np.stack([px - xs, py - ys]).astype(np.float32)


def max_displacement(motion: Motion, t0_us: float, t1_us: float, height: int, width: int) -> float:
    """Largest displacement between t0 and t1 over a 5x5 grid of image points (corners included)."""
    rel = motion.matrix(t1_us) @ np.linalg.inv(motion.matrix(t0_us))
    gx, gy = np.meshgrid(np.linspace(0, width - 1, 5), np.linspace(0, height - 1, 5))
    px, py = _project(rel, gx, gy)
    return float(np.hypot(px - gx, py - gy).max())


def frame_times(
    motion: Motion, duration_us: int, delta_t: int, height: int, width: int, max_px: float = 0.5
) -> list[int]:
    """Frame timestamps (us): every bin edge, plus bisected times so no pixel moves more than ``max_px``."""
    times = [0]
    t = 0
    while t < duration_us:
        edge = min((t // delta_t + 1) * delta_t, duration_us)
        if max_displacement(motion, t, edge, height, width) <= max_px:
            t = edge
        else:
            lo, hi = t, edge
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if max_displacement(motion, t, mid, height, width) <= max_px:
                    lo = mid
                else:
                    hi = mid
            t = max(lo, t + 1)
        times.append(t)
    return times


def random_motion(
    kind: str,
    height: int,
    width: int,
    texture_hw: tuple[int, int],
    generator: np.random.Generator,
    max_speed: float = 200.0,
    duration_us: float = 1e6,
) -> Motion:
    """A random trajectory of the given kind, timed so that its fastest pixel moves at U[0.3, 1] * ``max_speed``.

    The speed is measured over ``[0, duration_us]`` and never exceeds ``max_speed`` there.

    Raises:
        ConfigError: unknown kind.
    """
    place = centring(texture_hw, (height, width))
    speed = float(generator.uniform(0.3, 1.0)) * max_speed
    direction = float(generator.uniform(0, 2 * math.pi))
    vel = (speed * math.cos(direction), speed * math.sin(direction))
    motion: Motion
    if kind == "affine":
        motion = AffineMotion(
            (height, width), place, 1.0, vel, float(generator.uniform(-0.5, 0.5)), float(generator.uniform(-0.3, 0.3))
        )
    elif kind == "homography":
        wx, wy, wz = (float(v) for v in generator.uniform(-0.3, 0.3, 3))
        tx, ty, tz = (float(v) for v in generator.uniform(-0.3, 0.3, 3))
        tilt = generator.uniform(-0.2, 0.2, 2)
        normal = np.array([tilt[0], tilt[1], 1.0])
        nx, ny, nz = (float(v) for v in normal / np.linalg.norm(normal))
        motion = HomographyMotion(
            (height, width),
            place,
            1.0,
            (wx, wy, wz),
            (tx, ty, tz),
            (nx, ny, nz),
            2.0,
            0.0,
        )
    elif kind == "piecewise":
        n_seg = 8
        vels = []
        for _ in range(n_seg):
            s, d = float(generator.uniform(0.2, 1.0)) * max_speed, float(generator.uniform(0, 2 * math.pi))
            vels.append((s * math.cos(d), s * math.sin(d)))
        motion = PiecewiseMotion((height, width), place, 1.0, vels, 0.1, 0.03)
    else:
        message = f"unknown motion {kind!r}; choices: {MOTIONS}"
        raise ConfigError(message)

    def fastest(horizon_us: float) -> float:
        probe = 1000.0
        steps = np.linspace(0, horizon_us, 21)
        return max(max_displacement(motion, t, t + probe, height, width) for t in steps) * 1e6 / probe

    for _ in range(4):  # time scaling changes which part of the trajectory is seen: iterate to the target
        worst = fastest(duration_us)
        if worst <= 0:
            break
        motion.time_scale *= speed / worst  # the fastest pixel moves at the drawn speed
    worst = fastest(duration_us)
    if worst > max_speed:
        motion.time_scale *= max_speed / worst
    return motion


@dataclass
class SequenceSpec:
    """Everything that defines one synthetic sequence (its JSON form goes to ``*_meta.json``)."""

    index: int
    seed: int
    height: int
    width: int
    duration_us: int
    delta_t: int
    texture: str
    motion: str
    preset: str = "clean"
    fmt: str = "dat"
    supersample: bool = False
    max_speed: float = 200.0


def generate_sequence(
    out_dir: str | Path, spec: SequenceSpec, texture_image: str | Path | None = None
) -> dict[str, Any]:
    """Simulates one sequence into ``out_dir``.

    It writes ``seq_{i:04d}_td.dat`` (or ``_td.h5`` / ``.raw``), ``seq_{i:04d}_flow.h5`` and ``seq_{i:04d}_meta.json``.

    Returns:
        The metadata written to ``_meta.json`` (with the output paths).

    Raises:
        ConfigError: unknown format, preset, texture or motion, or a duration shorter than ``delta_t``.
    """
    from opsin.eventflow import __version__

    if spec.fmt not in ("dat", "h5", "evt2"):
        message = f"unknown event format {spec.fmt!r}; choices: dat, h5, evt2"
        raise ConfigError(message)
    if spec.preset not in PRESETS:
        message = f"unknown simulator preset {spec.preset!r}; choices: {sorted(PRESETS)}"
        raise ConfigError(message)
    if spec.duration_us < spec.delta_t or spec.delta_t <= 0:
        message = f"duration_us={spec.duration_us} must be >= delta_t={spec.delta_t} > 0"
        raise ConfigError(message)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, w = spec.height, spec.width
    scene = rng(spec.seed, "scene")
    texture = make_texture(spec.texture, h, w, scene, texture_image)
    motion = random_motion(spec.motion, h, w, texture.shape, scene, spec.max_speed, spec.duration_us)
    sim = EventSimulator(h, w, seed=derive_seed(spec.seed, "simulator"))
    sim.set_config(spec.preset)
    stem = f"seq_{spec.index:04d}"
    suffix = {"dat": "_td.dat", "h5": "_td.h5", "evt2": ".raw"}[spec.fmt]
    events_path = out / f"{stem}{suffix}"
    times = frame_times(motion, spec.duration_us, spec.delta_t, h, w)
    chunks: list[np.ndarray] = []
    writer = DatWriter(events_path, h, w, date=_DAT_DATE) if spec.fmt == "dat" else None
    n_events = 0
    try:
        for i, t in enumerate(times):
            sim.image_callback(render(texture, motion.matrix(t), h, w, spec.supersample), t)
            if i % 64 == 63 or i == len(times) - 1:
                ev = sim.get_events()
                sim.flush_events()
                n_events += ev.size
                if writer is not None:
                    writer.write(ev)
                else:
                    chunks.append(ev)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    else:
        events = np.concatenate(chunks) if chunks else np.zeros(0, dtype=sim.get_events().dtype)
        if spec.fmt == "h5":
            write_h5_events(events_path, events, h, w)
        else:
            write_evt2(events_path, events, h, w)
    n_bins = spec.duration_us // spec.delta_t
    starts = np.arange(n_bins, dtype=np.int64) * spec.delta_t
    flows = np.stack([gt_flow(motion, s, s + spec.delta_t, h, w) for s in starts.tolist()])
    flow_path = out / f"{stem}_flow.h5"
    write_flow_labels(flow_path, flows, starts, starts + spec.delta_t, h, w, spec.delta_t)
    meta = {
        "seed": spec.seed,
        "index": spec.index,
        "height": h,
        "width": w,
        "duration_us": spec.duration_us,
        "delta_t": spec.delta_t,
        "texture": spec.texture,
        "trajectory": {"kind": spec.motion, **motion.describe()},
        "simulator": {
            "preset": spec.preset,
            "Cp": sim.Cp,
            "Cn": sim.Cn,
            "sigma_threshold": sim.sigma_threshold,
            "cutoff_hz": sim.cutoff_hz,
            "leak_rate_hz": sim.leak_rate_hz,
            "shot_noise_rate_hz": sim.shot_noise_rate_hz,
            "refractory_period": sim.refractory_period,
        },
        "num_frames": len(times),
        "supersample": spec.supersample,
        "num_events": int(n_events),
        "events": events_path.name,
        "flow": flow_path.name,
        "generator": f"opsin-event-flow {__version__}",
    }
    atomic_write_text(out / f"{stem}_meta.json", dumps_json(meta, indent=2, sort_keys=True) + "\n")
    return meta


def split_counts(num_sequences: int) -> tuple[int, int, int]:
    """(train, val, test) counts: one val and one test sequence from 3 on, a fifth each from 10 on."""
    if num_sequences <= 0:
        message = f"num_sequences must be >= 1, got {num_sequences}"
        raise ConfigError(message)
    if num_sequences == 1:
        return 1, 0, 0
    if num_sequences == 2:
        return 1, 1, 0
    extra = max(1, num_sequences // 5)
    return num_sequences - 2 * extra, extra, extra


def make_dataset(
    out_dir: str | Path,
    num_sequences: int,
    height: int = 64,
    width: int = 64,
    duration_us: int = 300_000,
    delta_t: int = 10_000,
    preset: str = "clean",
    fmt: str = "dat",
    seed: int = 0,
    textures: Sequence[str] = ("noise", "blobs", "checker"),
    motions: Sequence[str] = MOTIONS,
    max_speed: float = 200.0,
    supersample: bool = False,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """Writes ``train/``, ``val/`` and a labelled ``test/`` folder of synthetic sequences under ``out_dir``.

    Sequence i uses the seed ``derive_seed(seed, "synth", i)``, so the same arguments give identical files.
    ``show_progress`` draws a progress bar (on a terminal) while the sequences are simulated.

    Returns:
        The metadata of every sequence (with a ``split`` key).
    """
    n_train, n_val, _ = split_counts(num_sequences)
    metas = []
    indices = progress(range(num_sequences), desc="synth", unit="seq") if show_progress else range(num_sequences)
    for i in indices:
        split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
        seq_seed = derive_seed(seed, "synth", i)
        pick = rng(seq_seed, "choice")
        spec = SequenceSpec(
            i,
            seq_seed,
            height,
            width,
            duration_us,
            delta_t,
            str(pick.choice(list(textures))),
            str(pick.choice(list(motions))),
            preset,
            fmt,
            max_speed=max_speed,
            supersample=supersample,
        )
        meta = generate_sequence(Path(out_dir) / split, spec)
        meta["split"] = split
        _log.info(
            "synthetic sequence %d (%s, %s, %s): %d events", i, split, spec.texture, spec.motion, meta["num_events"]
        )
        metas.append(meta)
    return metas
