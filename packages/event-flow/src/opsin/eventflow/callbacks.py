"""FlowCallback: the training curriculum of chunk lengths and the periodic demo videos."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from opsin.core import get_logger
from opsin.eventflow._schedule import curriculum_max_consecutive_batch
from opsin.eventflow.errors import ConfigError

__all__ = ["FlowCallback"]

_log = get_logger(__name__)


class FlowCallback(pl.Callback):
    """Installs the curriculum in the data module and writes demo videos of the validation recordings.

    The curriculum cuts the training recordings into chunks of ``max(1, int(p ** (epoch - 1)))`` batches for
    epoch < 20 and streams whole recordings afterwards: short clips (frequent state resets) first. Lightning builds
    the training loader before the epoch hooks run, so the data module applies the law itself when the trainer
    reloads the loader; the trainer must therefore use ``reload_dataloaders_every_n_epochs=1``.

    Args:
        data_module: the :class:`~opsin.eventflow.data_module.FlowDataModule`; None takes the trainer's data module
            (the form used from a YAML config).
        curriculum_param: p >= 1.
        video_result_every_n_epochs: write a video after every n-th training epoch (0 or None: never).
        mask_flow_by_input: draw flow only where the input has events.

    Raises:
        ConfigError: ``curriculum_param`` < 1 or a negative video period.
    """

    def __init__(
        self,
        data_module: Any = None,
        curriculum_param: float = 1.414,
        video_result_every_n_epochs: int | None = 2,
        mask_flow_by_input: bool = True,
    ) -> None:
        super().__init__()
        curriculum_max_consecutive_batch(0, curriculum_param)
        if video_result_every_n_epochs is not None and video_result_every_n_epochs < 0:
            message = f"video_result_every_n_epochs must be >= 0, got {video_result_every_n_epochs}"
            raise ConfigError(message)
        self.data_module = data_module
        self.curriculum_param = float(curriculum_param)
        self.video_result_every_n_epochs = video_result_every_n_epochs
        self.mask_flow_by_input = mask_flow_by_input

    def _data_module(self, trainer: pl.Trainer) -> Any:
        data_module = self.data_module if self.data_module is not None else getattr(trainer, "datamodule", None)
        if data_module is None or not hasattr(data_module, "max_consecutive_batch"):
            message = "FlowCallback needs a FlowDataModule (pass it, or give the trainer a datamodule)"
            raise ConfigError(message)
        return data_module

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Installs the curriculum parameter; checks that the training loader is rebuilt every epoch."""
        data_module = self._data_module(trainer)
        data_module.curriculum_param = self.curriculum_param
        reload = getattr(trainer, "reload_dataloaders_every_n_epochs", None)
        if stage == "fit" and reload != 1:
            message = (
                f"FlowCallback's curriculum needs the Trainer option reload_dataloaders_every_n_epochs=1, got {reload}"
            )
            raise ConfigError(message)

    def max_consecutive_batch(self, epoch: int) -> int | None:
        """The chunk length of ``epoch`` (None: whole recordings)."""
        return curriculum_max_consecutive_batch(epoch, self.curriculum_param)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Logs ``curriculum/max_consecutive_batch`` (0 stands for whole recordings)."""
        value = self.max_consecutive_batch(trainer.current_epoch)
        pl_module.log("curriculum/max_consecutive_batch", float(value or 0), on_step=False, on_epoch=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Every n-th epoch, on rank 0, renders 50 batches of the validation recordings into the log folder."""
        period = self.video_result_every_n_epochs
        if not period or (trainer.current_epoch + 1) % period or not trainer.is_global_zero:
            return
        if trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        data_module = self._data_module(trainer)
        files = list(getattr(data_module, "val_files", []) or getattr(data_module, "test_files", []))
        if not files:
            _log.info("no validation recording: no demo video this epoch")
            return
        log_dir = trainer.log_dir or trainer.default_root_dir
        path = pl_module.demo_video(  # type: ignore[operator]
            files,
            log_dir,
            epoch=trainer.current_epoch,
            num_batches=50,
            mask_by_input=self.mask_flow_by_input,
            batch_size=getattr(data_module, "batch_size", None),
        )
        _log.info("epoch %d demo video: %s", trainer.current_epoch, path)
