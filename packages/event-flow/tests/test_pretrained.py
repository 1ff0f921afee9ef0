"""The pretrained model shipped inside the wheel loads and predicts the direction of a known motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _scenes import DT, translating_events

from opsin.eventflow import pretrained
from opsin.eventflow.inference import infer_file, load_predictor
from opsin.eventflow.io import read_flow_labels
from opsin.eventflow.io.dat import write_dat


def test_the_shipped_model_is_listed_and_documented() -> None:
    assert pretrained.DEFAULT in pretrained.available()
    path = pretrained.checkpoint_path()
    assert 1e6 < path.stat().st_size < 10e6  # a few MB: weights and hyper-parameters, no optimizer state
    with pytest.raises(KeyError, match="available"):
        pretrained.checkpoint_path("no-such-model")


def test_pretrained_model_predicts_the_direction_of_a_translation(tmp_path: Path) -> None:
    model = pretrained.load()
    assert model.hparams.delta_t == DT
    assert model.hparams.preprocess == "event_cube"
    predictor = load_predictor()
    for velocity in [(160.0, 0.0), (-160.0, 0.0), (0.0, -160.0), (0.0, 160.0), (113.0, -113.0)]:
        events = translating_events(64, 96, velocity, 400_000)
        path = tmp_path / "shift_td.dat"
        write_dat(path, events, 64, 96)
        labels = read_flow_labels(infer_file(predictor, path, tmp_path / "shift_flow.h5", show_progress=False).path)
        assert labels.flow.shape == (8, 2, 64, 96)  # windows [k*50 ms, (k+1)*50 ms) up to the last event
        assert np.isfinite(labels.flow).all()
        # After the recurrent state has warmed up, the median flow is the texture's motion (8 px per window): the
        # right direction and the right length, within 2 px (zero flow would be 8 px off).
        median = np.median(labels.flow[2:], axis=(0, 2, 3))
        expected = np.asarray(velocity) * DT / 1e6
        axis = int(np.argmax(np.abs(expected)))
        assert np.sign(median[axis]) == np.sign(expected[axis]), (velocity, median)
        assert np.linalg.norm(median - expected) < 2.0, (velocity, median)
