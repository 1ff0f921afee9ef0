from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from opsin.eventflow import EVENT_CD


@pytest.fixture
def random_events() -> np.ndarray:
    gen = np.random.default_rng(7)
    n = 5000
    ev = np.zeros(n, dtype=EVENT_CD)
    ev["x"] = gen.integers(0, 640, n)
    ev["y"] = gen.integers(0, 480, n)
    ev["p"] = gen.integers(0, 2, n)
    ev["t"] = np.sort(gen.integers(0, 200_000, n))
    return ev


@pytest.fixture(scope="session")
def fixtures_root() -> Path:
    """The shared real-data fixtures: ``$OPSIN_FIXTURES``, else ``<repo>/../shared/fixtures`` (may be absent)."""
    default = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
    return Path(os.environ.get("OPSIN_FIXTURES", default))


@pytest.fixture(scope="session")
def flow_dataset(tmp_path_factory):
    """A tiny synthetic dataset (32x32, 240 ms, 10 ms GT): raw/{train,val,test} with DAT files and flow labels."""
    from opsin.eventflow.synthetic import make_dataset

    root = tmp_path_factory.mktemp("flow_data")
    make_dataset(root, 4, 32, 32, 240_000, 10_000, seed=3, max_speed=150.0)
    return root


@pytest.fixture
def one_torch_thread():
    """Tiny tensors run fastest on one thread (and a busy 2-core runner makes OpenMP spin)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
