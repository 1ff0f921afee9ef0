"""Recordings of known motion for the inference tests."""

from __future__ import annotations

import numpy as np

from opsin.core import derive_seed, rng
from opsin.eventflow._motion import AffineMotion, centring
from opsin.eventflow.simulator import EventSimulator
from opsin.eventflow.synthetic import frame_times, make_texture, render

DT = 50_000


def translating_events(height: int, width: int, velocity: tuple[float, float], duration_us: int) -> np.ndarray:
    """Events of a noise texture translating at ``velocity`` px/s (clean simulator): exact known motion."""
    gen = rng(derive_seed("infer-test", height, width), "texture")
    texture = make_texture("noise", height, width, gen)
    motion = AffineMotion((height, width), centring(texture.shape, (height, width)), 1.0, velocity, 0.0, 0.0)
    sim = EventSimulator(height, width, seed=5)
    sim.set_config("clean")
    for t in frame_times(motion, duration_us, DT, height, width):
        sim.image_callback(render(texture, motion.matrix(t), height, width), t)
    return sim.get_events()
