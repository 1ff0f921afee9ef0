"""A 2-process CPU DDP run (gloo): disjoint batch columns, equal step counts, synchronised weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import lightning.pytorch as pl
    import torch
    import torch.distributed as dist

    from opsin.eventflow.callbacks import FlowCallback
    from opsin.eventflow.data_module import FlowDataModule
    from opsin.eventflow.lightning_model import FlowModel


    class Record(pl.Callback):
        def __init__(self, out):
            self.out = out
            self.items = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.items.append([[str(meta.path), int(start)] for meta, start, _ in batch["video_infos"]])

        def on_train_end(self, trainer, pl_module):
            digest = float(sum(p.detach().double().sum() for p in pl_module.parameters()))
            result = {
                "rank": trainer.global_rank,
                "world": trainer.world_size,
                "backend": dist.get_backend(),
                "items": self.items,
                "global_step": trainer.global_step,
                "digest": digest,
            }
            with open(f"{self.out}/rank{trainer.global_rank}.json", "w") as fh:
                json.dump(result, fh)


    if __name__ == "__main__":
        data_dir, out = sys.argv[1], sys.argv[2]
        torch.set_num_threads(1)
        pl.seed_everything(5)
        shape = (2, 6, 32, 32)
        model = FlowModel(delta_t=10_000, array_dim=shape, network_kwargs={"base": 4, "scales": 2}, learning_rate=1e-3)
        data = FlowDataModule(
            data_dir=data_dir, batch_size=1, num_workers=0, delta_t=10_000, array_dim=shape, data_aug=False
        )
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=2,
            strategy="ddp",
            max_epochs=1,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            reload_dataloaders_every_n_epochs=1,
            callbacks=[FlowCallback(video_result_every_n_epochs=0), Record(out)],
        )
        trainer.fit(model, datamodule=data)
    """
)


@pytest.mark.slow
def test_two_process_cpu_ddp(flow_dataset, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OPSIN_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(flow_dataset), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world"] == 2 and r["backend"] == "gloo" for r in ranks)
    # Equal step counts, and every rank streams its own columns: no (file, start) is seen twice.
    assert len(ranks[0]["items"]) == len(ranks[1]["items"]) > 0
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == len(ranks[0]["items"])
    seen = [tuple(item) for r in ranks for batch in r["items"] for item in batch]
    assert len(seen) == len(set(seen))
    # Two 240 ms training files in 20 ms samples, one-sample chunks at epoch 0: 24 chunks dealt over 2 columns.
    assert len(seen) == 24
    assert {path for path, _ in seen} == {str(p) for p in sorted((flow_dataset / "train").glob("*_td.dat"))}
    # Gradients were averaged: both replicas end with the same weights.
    assert ranks[0]["digest"] == pytest.approx(ranks[1]["digest"], rel=1e-6)
