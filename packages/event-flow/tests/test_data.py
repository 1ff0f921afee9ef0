from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest
import torch

from opsin.eventflow import ConfigError
from opsin.eventflow._augment import ChunkAugmentation, augmentation_seed, rotate_flip_features, rotate_flip_flow
from opsin.eventflow._precompute import PrecomputeJob, precompute_file
from opsin.eventflow.data import FileMetadata, SequentialDataLoader, load_labels_stub
from opsin.eventflow.data_module import FlowDataModule, load_labels_flow
from opsin.eventflow.io import write_dat, write_features, write_flow_labels
from opsin.eventflow.preprocessing import PREPROCESSING_DICT, events_to_tensor_torch

H, W, DT, T = 16, 20, 10_000, 2


def synthetic_events(seed, duration):
    gen = np.random.default_rng(seed)
    n = duration // 20
    ev = np.zeros(n, dtype=[("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")])
    ev["x"] = gen.integers(0, W, n)
    ev["y"] = gen.integers(0, H, n)
    ev["p"] = gen.integers(0, 2, n)
    ev["t"] = np.sort(gen.integers(0, duration, n))
    return ev


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    paths = []
    for i, duration in enumerate([120_000, 80_000, 60_000]):
        path = root / f"r{i}_td.dat"
        write_dat(path, synthetic_events(i, duration), H, W)
        paths.append(path)
    return paths


def test_event_and_feature_loaders_agree_for_histo(recordings, tmp_path):
    feats = []
    for path in recordings:
        precompute_file(PrecomputeJob(str(path), str(tmp_path), "histo", DT))
        feats.append(tmp_path / path.name.replace("_td.dat", ".h5"))
    common = {"delta_t": DT, "preprocess": "histo", "array_dim": (T, 2, H, W), "batch_size": 2, "num_workers": 0}
    ev_loader = SequentialDataLoader(recordings, **common)
    ft_loader = SequentialDataLoader(feats, **common)
    assert len(ev_loader) == len(ft_loader) == 4  # columns [r0 (6 samples... rounded), r2] and [r1]
    for a, b in zip(ev_loader, ft_loader):
        assert a["inputs"].shape == (T, 2, 2, H, W)
        assert a["inputs"].dtype == torch.float32
        torch.testing.assert_close(a["inputs"], b["inputs"])
        assert a["mask_keep_memory"].shape == (2, 1, 1, 1)
        assert a["frame_is_labeled"].shape == (T, 2)
        assert not a["frame_is_labeled"].any()
        assert len(a["labels"]) == T
        assert len(a["labels"][0]) == 2
        assert not a["is_padding"].any()
    first = next(iter(ev_loader))
    assert first["mask_keep_memory"].view(-1).tolist() == [0.0, 0.0]
    infos = [next(iter(ev_loader))["video_infos"][b] for b in range(2)]
    assert [info[1] for info in infos] == [0, 0]
    assert infos[0][2] == T * DT


def test_columns_continue_in_time_and_workers_keep_order(recordings):
    loader = SequentialDataLoader(
        recordings,
        DT,
        "event_cube",
        (T, 6, H, W),
        batch_size=2,
        num_workers=0,
        max_consecutive_batch=2,
        shuffle=True,
        seed=3,
    )
    batches = list(loader)
    for b in range(2):
        starts = [batch["video_infos"][b][1] for batch in batches]
        keeps = [float(batch["mask_keep_memory"][b]) for batch in batches]
        for s in range(1, len(batches)):
            if keeps[s] == 1.0:
                assert starts[s] == starts[s - 1] + T * DT
                assert batches[s]["video_infos"][b][0].path == batches[s - 1]["video_infos"][b][0].path
            else:
                assert starts[s] == batches[s]["video_infos"][b][0].start_ts
    parallel = SequentialDataLoader(
        recordings,
        DT,
        "event_cube",
        (T, 6, H, W),
        batch_size=2,
        num_workers=2,
        max_consecutive_batch=2,
        shuffle=True,
        seed=3,
    )
    for a, b in zip(batches, parallel):
        torch.testing.assert_close(a["inputs"], b["inputs"])


def test_padding_items_are_zero_and_flagged(recordings):
    loader = SequentialDataLoader(recordings[:2], DT, "histo", (T, 2, H, W), batch_size=2, num_workers=0, padding=True)
    batches = list(loader)
    assert len(batches) == 6
    last = batches[-1]
    assert last["is_padding"].tolist() == [False, True]
    assert float(last["inputs"][:, 1].abs().sum()) == 0.0
    assert float(last["mask_keep_memory"][1]) == 0.0


def test_wrong_channels_or_downsampling_are_config_errors(recordings, tmp_path):
    n_events_file = tmp_path / "legacy.h5"
    write_features(n_events_file, np.zeros((2, 2, H, W), np.float32), "histo", DT, H, W)
    with h5py.File(n_events_file, "a") as fh:
        fh["data"].attrs["mode"] = "n_events"
    with pytest.raises(ConfigError, match="n_events"):
        SequentialDataLoader([n_events_file], DT, "histo", (T, 2, H, W), num_workers=0)
    with pytest.raises(ConfigError, match="channels"):
        SequentialDataLoader(recordings, DT, "histo", (T, 6, H, W), num_workers=0)
    bad = SequentialDataLoader(recordings, DT, "histo", (T, 2, 5, 7), num_workers=0, batch_size=1)
    with pytest.raises(ConfigError, match="power of 2"):
        next(iter(bad))


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("name", sorted(PREPROCESSING_DICT))
def test_torch_twin_matches_numpy(name, device):
    if name not in ("histo", "diff", "timesurface", "multi_channel_timesurface", "event_cube", "event_cube_paper"):
        pytest.skip("only the built-in builders have a twin")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ev = synthetic_events(9, 50_000)
    info = PREPROCESSING_DICT[name]
    ref = np.zeros((3, info["cin"], H // 2, W // 2), np.float32)
    info["fn"](ev, ref, 50_000, 1, True, **info["kwargs"])
    out = torch.zeros(ref.shape, device=device)
    events_to_tensor_torch(ev, out, name, 50_000, downsampling_factor=1)
    np.testing.assert_allclose(out.cpu().numpy(), ref, atol=1e-6)


def test_augmentation_moves_features_and_labels_together():
    feat = np.zeros((1, 1, 21, 21), np.float32)
    feat[0, 0, 10, 15] = 1.0  # 5 px right of the centre
    flow = np.zeros((2, 21, 21), np.float32)
    flow[0] = 1.0  # (u, v) = (1, 0)
    rot = rotate_flip_features(feat, 90.0, False)
    y, x = np.unravel_index(np.argmax(rot[0, 0]), (21, 21))
    lab = rotate_flip_flow(flow, 90.0, False)
    # OpenCV's +90 degrees turns the image counter-clockwise on screen: right of centre goes up.
    assert (y, x) == (5, 10)
    np.testing.assert_allclose(lab[:, 10, 10], [0.0, -1.0], atol=1e-6)  # the motion turns the same way
    flipped = rotate_flip_features(feat, None, True)
    assert flipped[0, 0, 10, 5] == 1.0
    np.testing.assert_allclose(rotate_flip_flow(flow, None, True)[0], -1.0)
    corner = rotate_flip_flow(flow, 45.0, False)
    assert np.isinf(corner[:, 0, 0]).all()  # outside the rotated field: invalid
    aug = ChunkAugmentation()
    assert aug.draw(123) == aug.draw(123)
    assert augmentation_seed("/a.h5", 40_000, 2, 0) == zlib.crc32(b"/a.h5|40000|2|0")


def test_load_labels_flow_interpolates_to_bins(tmp_path):
    path = tmp_path / "s_td.dat"
    write_dat(path, synthetic_events(1, 40_000), H, W)
    flow = np.zeros((4, 2, H, W), np.float32)
    flow[:, 0] = 2.0  # 2 px per 10 ms
    starts = np.arange(4) * 10_000
    write_flow_labels(tmp_path / "s_flow.h5", flow, starts, starts + 10_000, H, W)
    meta = FileMetadata(str(path), 40_000, 5_000, 4)
    labels, labeled = load_labels_flow(meta, 30_000, 20_000, torch.zeros(4, 6, H, W))
    assert labeled.tolist() == [True, True, False, False]  # GT ends at 40 ms
    torch.testing.assert_close(labels[0], torch.full((2, H, W), 1.0) * torch.tensor([1.0, 0.0]).view(2, 1, 1))
    assert labels[2].numel() == 0
    stub, none = load_labels_stub(meta, 0, 20_000, torch.zeros(4, 1, 1, 1))
    assert len(stub) == 4
    assert not none.any()


def test_flow_data_module(tmp_path, recordings):
    data = tmp_path / "data"
    for split, recs in (("train", recordings[:2]), ("val", recordings[2:])):
        for path in recs:
            precompute_file(PrecomputeJob(str(path), str(data / split), "event_cube", DT))
    flow = np.ones((6, 2, H, W), np.float32)
    starts = np.arange(6) * DT
    write_flow_labels(data / "val" / "r2_flow.h5", flow, starts, starts + DT, H, W)
    dm = FlowDataModule(
        {"batch_size": 3, "delta_t": 99}, str(data), delta_t=DT, array_dim=(T, 6, H, W), num_workers=0, data_aug=True
    )
    assert dm.batch_size == 3
    assert dm.delta_t == DT
    dm.setup("fit")
    assert [p.name for p in dm.train_files] == ["r0.h5", "r1.h5"]
    assert [p.name for p in dm.val_files] == ["r2.h5"]  # the label file is not a recording
    train = dm.train_dataloader()
    assert train.max_consecutive_batch == 1
    assert train.transforms is not None
    for batch in train:
        assert batch["mask_keep_memory"].view(-1).tolist() == [0.0] * 3  # epoch 0: one-batch clips
    val = dm.val_dataloader()
    batch = next(iter(val))
    assert batch["frame_is_labeled"][:, 0].all()
    assert batch["is_padding"].tolist() == [False, True, True]
    torch.testing.assert_close(batch["labels"][0][0], torch.ones(2, H, W))
    with pytest.raises(ConfigError, match="curriculum"):
        FlowDataModule(data_dir=str(data), curriculum_param=0.5)


@pytest.mark.slow
def test_data_module_drives_a_lightning_fit_with_the_curriculum(tmp_path, recordings):
    import lightning.pytorch as pl

    for path in recordings:
        precompute_file(PrecomputeJob(str(path), str(tmp_path / "train"), "event_cube", DT))

    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(6, 2, 1)
            self.seen = []

        def training_step(self, batch, batch_idx):
            self.seen.append((self.current_epoch, batch["mask_keep_memory"].view(-1).tolist()))
            return self.conv(batch["inputs"].flatten(0, 1)).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    dm = FlowDataModule(
        data_dir=str(tmp_path), batch_size=2, num_workers=0, delta_t=DT, array_dim=(T, 6, H, W), curriculum_param=2.0
    )
    model = Probe()
    trainer = pl.Trainer(
        max_epochs=3,
        reload_dataloaders_every_n_epochs=1,
        use_distributed_sampler=False,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        limit_val_batches=0,
    )
    trainer.fit(model, dm)
    by_epoch = {e: [keep for ep, keep in model.seen if ep == e] for e in range(3)}
    assert all(keep == [0.0, 0.0] for keep in by_epoch[0])  # 1-batch clips
    assert by_epoch[2][1] == [1.0, 1.0]  # epoch 2: 2-batch clips, state kept on the second batch
    assert len(by_epoch[2]) < len(by_epoch[0])  # the epoch length follows the new schedule
