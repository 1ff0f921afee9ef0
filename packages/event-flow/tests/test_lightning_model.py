from __future__ import annotations

import math
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from opsin.eventflow.callbacks import FlowCallback
from opsin.eventflow.data_module import FlowDataModule
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.lightning_model import DEFAULT_NETWORK_KWARGS, FlowModel, load_flow_model
from opsin.eventflow.losses import LOSS_WEIGHTS, charbonnier_loss

TINY = {"base": 4, "scales": 2, "rnn_cell": "lstm", "separable": True}
ARRAY_DIM = (2, 6, 32, 32)


def tiny_model(**kwargs) -> FlowModel:
    args = {"delta_t": 10_000, "array_dim": ARRAY_DIM, "network_kwargs": TINY, "learning_rate": 1e-3}
    return FlowModel(**{**args, **kwargs})


def tiny_data(root, **kwargs) -> FlowDataModule:
    args = {"batch_size": 2, "num_workers": 0, "delta_t": 10_000, "array_dim": ARRAY_DIM, "data_aug": False}
    return FlowDataModule(data_dir=str(root), **{**args, **kwargs})


def tiny_trainer(tmp_path, **kwargs) -> pl.Trainer:
    args = {
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(tmp_path),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "reload_dataloaders_every_n_epochs": 1,
        "use_distributed_sampler": False,
        "logger": False,
        "enable_checkpointing": False,
    }
    return pl.Trainer(**{**args, **kwargs})


def test_no_lightning_1x_hooks_or_arguments():
    removed = [
        "validation_epoch_end",
        "test_epoch_end",
        "training_epoch_end",
        "training_step_end",
        "validation_step_end",
        "test_step_end",
        "on_epoch_start",
        "on_epoch_end",
        "on_pretrain_routine_start",
        "get_progress_bar_dict",
    ]
    for name in removed:
        assert not hasattr(FlowModel, name), name
        assert not hasattr(FlowCallback, name), name


def test_defaults_and_hparams():
    model = FlowModel(array_dim=(1, 6, 16, 16))
    hp = model.hparams
    assert hp.network_kwargs == DEFAULT_NETWORK_KWARGS == {"rnn_cell": "lstm", "base": 32, "separable": True}
    assert hp.loss_weights == LOSS_WEIGHTS
    assert hp.loss_weights is not LOSS_WEIGHTS
    assert (hp.num_tbins, hp.cin, hp.height, hp.width) == (1, 6, 16, 16)
    assert hp.learning_rate == 1e-5
    assert hp.delta_t == 50_000
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["lr"] == 1e-5
    assert optimizer.defaults["betas"] == (0.9, 0.999)


def test_bw_deblur_forced_to_zero_without_micro_bins():
    with pytest.warns(UserWarning, match="bw_deblur"):
        model = FlowModel(preprocess="histo", array_dim=(2, 2, 16, 16), network_kwargs=TINY)
    assert model.hparams.loss_weights["bw_deblur"] == 0
    assert "bw_deblur" not in model.criterion.active
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cube = tiny_model()
    assert cube.hparams.loss_weights["bw_deblur"] == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"array_dim": (2, 2, 32, 32)}, "C=2"),
        ({"array_dim": (2, 6, 31, 32)}, "31"),
        ({"preprocess": "nope"}, "nope"),
        ({"loss_weights": {"data": 0}}, "loss weight"),
        ({"delta_t": 0}, "delta_t"),
        ({"outlier_rule": "xor"}, "outlier_rule"),
    ],
)
def test_invalid_hparams_raise_config_error(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny_model(**kwargs)


def test_supervised_loss_is_the_mean_over_labelled_samples_with_gradients_to_both():
    model = tiny_model()
    gen = torch.Generator().manual_seed(0)
    flow = torch.randn(2, 2, 2, 8, 8, generator=gen, requires_grad=True)  # (T, B, 2, h, w)
    label_a = torch.randn(2, 16, 16, generator=gen)  # label at twice the flow resolution
    label_b = torch.randn(2, 16, 16, generator=gen)
    label_b[:, :4] = math.inf  # invalid rows are masked
    labels = [[label_a, label_b], [torch.empty(0), torch.empty(0)]]
    labeled = torch.tensor([[True, True], [False, False]])
    loss = model.supervised_loss(flow, labels, labeled)
    # Per sample: nearest-resized label, components scaled by 8/16, masked mean of the Charbonnier penalty.
    target_a = label_a[:, ::2, ::2] * 0.5
    target_b = label_b[:, ::2, ::2] * 0.5
    rows = torch.isfinite(target_b).all(0)
    loss_a = charbonnier_loss(flow[0, 0] - target_a)
    loss_b = charbonnier_loss((flow[0, 1] - torch.where(rows, target_b, 0))[:, rows])
    torch.testing.assert_close(loss, (loss_a + loss_b) / 2)
    loss.backward()
    assert flow.grad[0, 0].abs().sum() > 0
    assert flow.grad[0, 1].abs().sum() > 0
    assert flow.grad[0, 1][:, :2].abs().sum() == 0  # the masked rows get no gradient
    assert flow.grad[1].abs().sum() == 0
    assert model.supervised_loss(flow, labels, torch.zeros(2, 2, dtype=torch.bool)) is None


def test_loss_step_uses_labels_when_present_else_the_self_supervised_losses():
    model = tiny_model()
    inputs = torch.rand(2, 2, 6, 32, 32) * (torch.rand(2, 2, 1, 32, 32) < 0.3)
    batch = {
        "inputs": inputs,
        "mask_keep_memory": torch.zeros(2, 1, 1, 1),
        "frame_is_labeled": torch.zeros(2, 2, dtype=torch.bool),
        "labels": [[torch.empty(0)] * 2] * 2,
        "is_padding": torch.zeros(2, dtype=torch.bool),
    }
    unsupervised = model.loss_step(batch, 0)
    model.network.reset_all()
    expected = model.compute_loss(inputs)
    torch.testing.assert_close(unsupervised, torch.stack(list(expected.values())).sum())
    batch["frame_is_labeled"] = torch.tensor([[False, True], [False, False]])
    batch["labels"] = [[torch.empty(0), torch.zeros(2, 32, 32)], [torch.empty(0)] * 2]
    supervised = model.loss_step(batch, 0)
    model.network.reset_all()
    flows = model(inputs)
    torch.testing.assert_close(supervised, charbonnier_loss(flows[-1][0, 1]))


def test_fast_dev_run_fit_validate_test(flow_dataset, tmp_path):
    model = tiny_model()
    data = tiny_data(flow_dataset, test_data_dir=str(flow_dataset / "test"))
    trainer = tiny_trainer(tmp_path, fast_dev_run=True, callbacks=[FlowCallback(curriculum_param=1.414)])
    before = [p.detach().clone() for p in model.parameters()]
    trainer.fit(model, datamodule=data)
    assert trainer.state.finished
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    assert trainer.callback_metrics["curriculum/max_consecutive_batch"] == 1
    for run, mode in ((trainer.validate, "val"), (trainer.test, "test")):
        (results,) = run(model, datamodule=tiny_data(flow_dataset, test_data_dir=str(flow_dataset / "test")))
        assert np.isfinite(results[f"{mode}_loss"])
        assert results[f"{mode}/n_valid_px"] > 0
        assert 0 <= results[f"{mode}/aee"] < 20
        assert 0 <= results[f"{mode}/outlier_pct"] <= results[f"{mode}/outlier_or_pct"] <= 100


def test_validation_keeps_the_training_recurrent_state(flow_dataset, tmp_path):
    model = tiny_model()
    model.network(torch.rand(2, 2, 6, 32, 32))
    before = model.network.get_states()
    model.on_validation_start()
    model.network.reset_all()
    model.network(torch.rand(2, 3, 6, 32, 32))  # another batch size, as validation may have
    model.on_validation_end()
    after = model.network.get_states()
    flat_before = [t for t in torch.utils._pytree.tree_leaves(before) if isinstance(t, torch.Tensor)]
    flat_after = [t for t in torch.utils._pytree.tree_leaves(after) if isinstance(t, torch.Tensor)]
    assert flat_before
    assert len(flat_before) == len(flat_after)
    for a, b in zip(flat_before, flat_after, strict=True):
        assert torch.equal(a, b)


def test_flow_callback_checks(flow_dataset, tmp_path):
    with pytest.raises(ConfigError, match="curriculum_param"):
        FlowCallback(curriculum_param=0.9)
    callback = FlowCallback(curriculum_param=1.414)
    assert [callback.max_consecutive_batch(e) for e in range(12)] == [1, 1, 1, 1, 2, 3, 5, 7, 11, 15, 22, 31]
    assert callback.max_consecutive_batch(20) is None
    trainer = tiny_trainer(tmp_path, max_epochs=1, reload_dataloaders_every_n_epochs=0, callbacks=[callback])
    with pytest.raises(ConfigError, match="reload_dataloaders_every_n_epochs"):
        trainer.fit(tiny_model(), datamodule=tiny_data(flow_dataset))


def test_checkpoint_loads_without_data_and_demo_video(flow_dataset, tmp_path):
    import cv2

    model = tiny_model(draw_dense=True)
    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, datamodule=tiny_data(flow_dataset))
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = load_flow_model(ckpt)
    assert loaded.hparams.network_kwargs == TINY
    assert not loaded.training
    x = torch.rand(2, 1, 6, 32, 32)
    model.eval()
    model.network.reset_all()
    loaded.network.reset_all()
    torch.testing.assert_close(loaded(x)[-1], model(x)[-1])
    model.train()
    files = sorted((flow_dataset / "val").glob("*_td.dat")) + sorted((flow_dataset / "train").glob("*_td.dat"))
    states = model.network.get_states()
    path = model.demo_video(files, tmp_path, epoch=3, num_batches=4, batch_size=3)
    assert path == tmp_path / "videos" / "video#3.mp4"
    assert model.training
    cap = cv2.VideoCapture(str(path))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok
    assert frames == 4 * ARRAY_DIM[0]
    # B = 3 -> 1 row of 3 tiles.
    assert frame.shape == (32, 96, 3)
    after = model.network.get_states()
    leaves = [t for t in torch.utils._pytree.tree_leaves(states) if isinstance(t, torch.Tensor)]
    for a, b in zip(leaves, [t for t in torch.utils._pytree.tree_leaves(after) if isinstance(t, torch.Tensor)]):
        assert torch.equal(a, b)
