"""FlowModel: the Lightning module that trains and evaluates a recurrent :class:`FlowNetwork`.

Training is self-supervised (the photometric, smoothness and sharpening losses of :class:`FlowLoss`); when a batch
carries dense labels the step is supervised instead (a masked Charbonnier against the labels). Validation and test
log the self-supervised loss and, on labelled bins, the endpoint error and outlier rates, accumulated over the epoch
and summed over all processes before they are logged.

Each batch first resets the recurrent state of the columns that start a new chunk (``mask_keep_memory``), then runs
one forward pass over its T bins; the state carries over to the next batch.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from opsin.core import get_logger
from opsin.eventflow.errors import ConfigError, EventFlowError, FormatError
from opsin.eventflow.flow_network import FlowNetwork
from opsin.eventflow.layers import time_to_batch
from opsin.eventflow.losses import LOSS_WEIGHTS, FlowLoss, charbonnier_loss
from opsin.eventflow.metrics import FlowMetricAccumulator, event_mask_from_features
from opsin.eventflow.preprocessing import get_preprocess_info

__all__ = ["DEFAULT_NETWORK_KWARGS", "FlowModel", "forget_states", "load_flow_model"]

_log = get_logger(__name__)

#: Network keyword arguments used when ``network_kwargs`` is None (the shipped config uses base 16).
DEFAULT_NETWORK_KWARGS: dict[str, Any] = {"rnn_cell": "lstm", "base": 32, "separable": True}

_OUTLIER_RULES = ("and", "or")


def forget_states(network: torch.nn.Module) -> None:
    """Drops the recurrent state of every cell (zeroing would keep its batch size; the next batch may differ)."""
    network.set_states([[torch.empty(0) for _ in state] for state in network.get_states()])  # type: ignore[operator]


class FlowModel(pl.LightningModule):
    """Self-supervised recurrent optical flow from event features.

    Args:
        delta_t: duration of one time bin (us); predictions are in pixels per ``delta_t``.
        preprocess: the preprocessing name of the input features (e.g. ``"event_cube"``).
        learning_rate: Adam learning rate.
        array_dim: (T, C, H, W) of one sample; T bins per batch, C channels, H x W pixels.
        loss_weights: weights of the self-supervised losses; None means a copy of ``LOSS_WEIGHTS``.
        feature_extractor_name: the network architecture (``eminet``, ``eminet_non_sep``, ``midinet``, ``midinet2``).
        network_kwargs: keyword arguments of the architecture (``base``, ``scales``, ``separable``, ``rnn_cell``,
            ``depth``); None means :data:`DEFAULT_NETWORK_KWARGS`.
        draw_dense: demo videos show dense colour-coded flow instead of arrows.
        preprocess_kwargs: keyword arguments of the preprocessing (they change C for some of them).
        outlier_rule: which rule ``{mode}/outlier_pct`` reports, ``"and"`` (MVSEC/KITTI) or ``"or"``;
            ``{mode}/outlier_or_pct`` always reports the OR rule.

    Raises:
        ConfigError: an unknown preprocessing or architecture, C not matching the preprocessing, a size the
            network cannot take, or no active loss.
    """

    def __init__(
        self,
        delta_t: int = 50000,
        preprocess: str = "event_cube",
        learning_rate: float = 1e-05,
        array_dim: Sequence[int] = (1, 6, 240, 320),
        loss_weights: dict[str, float] | None = None,
        feature_extractor_name: str = "eminet",
        network_kwargs: dict[str, Any] | None = None,
        draw_dense: bool = False,
        *,
        preprocess_kwargs: dict[str, Any] | None = None,
        outlier_rule: str = "and",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.set_defaults()
        hp: Any = self.hparams
        self.network = FlowNetwork(hp.array_dim, hp.loss_weights, hp.feature_extractor_name, **dict(hp.network_kwargs))
        # DDP broadcasts the outermost module's buffers before every forward: the recurrent state must stay per rank.
        self._ddp_params_and_buffers_to_ignore = self.network.recurrent_state_names("network.")
        self.criterion = FlowLoss(
            hp.loss_weights,
            self.network.get_warping_head(),
            preprocess=hp.preprocess,
            preprocess_kwargs=hp.preprocess_kwargs,
        )
        self._metrics = {mode: FlowMetricAccumulator() for mode in ("val", "test")}
        self._stashed_states: Any = None

    def set_defaults(self) -> None:
        """Fills the defaults of the hyper-parameters and checks them against the preprocessing.

        ``network_kwargs`` None becomes :data:`DEFAULT_NETWORK_KWARGS`, ``loss_weights`` None a copy of
        ``LOSS_WEIGHTS``; ``bw_deblur`` is forced to 0 (with a warning) when the preprocessing has no micro-bins,
        since that loss compares micro-bins; ``num_tbins``, ``cin``, ``height`` and ``width`` are read from
        ``array_dim``.
        """
        hp: Any = self.hparams
        if len(hp.array_dim) != 4 or any(int(v) <= 0 for v in hp.array_dim):
            message = f"array_dim must be four positive sizes (T, C, H, W), got {tuple(hp.array_dim)}"
            raise ConfigError(message)
        hp.array_dim = [int(v) for v in hp.array_dim]
        if int(hp.delta_t) <= 0:
            message = f"delta_t must be a positive number of microseconds, got {hp.delta_t}"
            raise ConfigError(message)
        if hp.outlier_rule not in _OUTLIER_RULES:
            message = f"outlier_rule must be one of {_OUTLIER_RULES}, got {hp.outlier_rule!r}"
            raise ConfigError(message)
        hp.network_kwargs = dict(DEFAULT_NETWORK_KWARGS if hp.network_kwargs is None else hp.network_kwargs)
        hp.loss_weights = dict(LOSS_WEIGHTS if hp.loss_weights is None else hp.loss_weights)
        hp.preprocess_kwargs = dict(hp.preprocess_kwargs or {})
        info = get_preprocess_info(hp.preprocess, hp.preprocess_kwargs)
        if info["micro_bins"] < 2 and hp.loss_weights.get("bw_deblur", 0):
            warnings.warn(
                f"bw_deblur needs micro-bins, which {hp.preprocess!r} has not: its weight is set to 0",
                UserWarning,
                stacklevel=3,
            )
            hp.loss_weights["bw_deblur"] = 0
        if not any(float(w) > 0 for w in hp.loss_weights.values()):
            message = f"at least one loss weight must be > 0, got {hp.loss_weights}"
            raise ConfigError(message)
        hp.num_tbins, hp.cin, hp.height, hp.width = hp.array_dim
        if hp.cin != info["cin"]:
            message = f"array_dim has C={hp.cin} channels but {hp.preprocess!r} produces {info['cin']}"
            raise ConfigError(message)

    @property
    def _hp(self) -> Any:
        return self.hparams

    # ----------------------------------------------------------------------------------------------------- forward

    def reset_memory(self, mask_keep_memory: Tensor) -> None:
        """Applies a batch's ``mask_keep_memory`` (B, 1, 1, 1) to the recurrent state (0 = the column restarts).

        When every column restarts, the state is dropped rather than zeroed, so the batch size may change there.
        """
        if bool(mask_keep_memory.any()):
            self.network.reset(mask_keep_memory)
        else:
            forget_states(self.network)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The flows of ``x`` (T, B, C, H, W), coarsest first, in px per delta_t of their own level."""
        return self.network(x)

    def _losses(self, flows: list[Tensor], inputs: Tensor, valid: Tensor | None = None) -> dict[str, Tensor]:
        flat = [time_to_batch(flow)[0] for flow in flows]
        pyramid = self.network.interpolate_all_inputs_using_pyramid(inputs)
        return self.criterion(flat, pyramid, inputs.shape[1], valid=valid)

    def compute_loss(self, inputs: Tensor, valid: Tensor | None = None) -> dict[str, Tensor]:
        """Runs the network on ``inputs`` (advancing its recurrent state) and returns the weighted losses.

        Args:
            inputs: (T, B, C, H, W) features.
            valid: (B,) bool, False for padding samples (excluded from the losses).

        Returns:
            Loss name -> weighted scalar, for every loss of non-zero weight.
        """
        return self._losses(self.network(inputs), inputs, valid)

    def supervised_loss(
        self, flow: Tensor, labels: Sequence[Sequence[Tensor]], frame_is_labeled: Tensor
    ) -> Tensor | None:
        """Mean over every labelled (t, b) of the masked-mean Charbonnier between ``flow`` and the label.

        Args:
            flow: (T, B, 2, h, w) finest predicted flow (px per delta_t at (h, w)).
            labels: ``labels[t][b]`` (2, H_l, W_l) in px per delta_t at the label resolution (+inf = invalid).
            frame_is_labeled: (T, B) bool.

        Returns:
            The loss, or None when no labelled frame has a finite pixel.
        """
        h, w = flow.shape[-2:]
        per_sample = []
        for t, b in frame_is_labeled.nonzero().tolist():
            label = labels[t][b]
            if label.numel() == 0:
                continue
            label = label.to(device=flow.device, dtype=flow.dtype)
            big_h, big_w = label.shape[-2:]
            resized = F.interpolate(label[None], size=(h, w), mode="nearest")[0]
            scale = torch.tensor([w / big_w, h / big_h], device=flow.device, dtype=flow.dtype).view(2, 1, 1)
            target = resized * scale
            finite = torch.isfinite(target).all(dim=0)
            if not bool(finite.any()):
                continue
            per_sample.append(charbonnier_loss(flow[t, b][:, finite] - target[:, finite]))
        if not per_sample:
            return None
        return torch.stack(per_sample).mean()

    # ------------------------------------------------------------------------------------------------------- steps

    def loss_step(self, batch: Mapping[str, Any], batch_idx: int, mode: str = "train") -> Tensor:
        """Resets the finished columns' state, runs one forward pass and returns the loss.

        The loss is supervised (logged as ``{mode}_charb_loss``) when the batch has labelled bins, else the sum of
        the self-supervised losses (``{mode}_loss`` and ``{mode}_loss_{name}``).
        """
        inputs = batch["inputs"]
        batch_size = int(inputs.shape[1])
        self.reset_memory(batch["mask_keep_memory"])
        flows = self.network(inputs)
        labeled = batch.get("frame_is_labeled")
        if labeled is not None and bool(labeled.any()):
            loss = self.supervised_loss(flows[-1], batch["labels"], labeled)
            if loss is not None:
                self.log(f"{mode}_charb_loss", loss, prog_bar=True, batch_size=batch_size)
                return loss
        padding = batch.get("is_padding")
        valid = None if padding is None else ~padding
        losses = self._losses(flows, inputs, valid)
        loss = torch.stack(list(losses.values())).sum()
        self.log(f"{mode}_loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in losses.items():
            self.log(f"{mode}_loss_{name}", value, batch_size=batch_size)
        return loss

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        """One training batch (see :meth:`loss_step`)."""
        return self.loss_step(batch, batch_idx, "train")

    def _evaluation_step(self, batch: Mapping[str, Any], mode: str) -> None:
        inputs = batch["inputs"]
        self.reset_memory(batch["mask_keep_memory"])
        flows = self.network(inputs)
        valid = ~batch["is_padding"]
        n_valid = int(valid.sum())
        if n_valid:
            losses = self._losses(flows, inputs, valid)
            loss = torch.stack(list(losses.values())).sum()
            self.log(f"{mode}_loss", loss, batch_size=n_valid, sync_dist=True)
        labeled = batch["frame_is_labeled"]
        if not bool(labeled.any()):
            return
        finest = flows[-1].detach().float().cpu()
        features = inputs.detach().cpu()
        accumulator = self._metrics[mode]
        for t, b in labeled.nonzero().tolist():
            label = batch["labels"][t][b]
            if label.numel() == 0:
                continue
            mask = event_mask_from_features(features[t, b])
            accumulator.update(finest[t, b], label.detach().cpu(), events_mask=mask)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Self-supervised ``val_loss``; metrics accumulated on labelled bins."""
        self._evaluation_step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Self-supervised ``test_loss``; metrics accumulated on labelled bins."""
        self._evaluation_step(batch, "test")

    def _log_epoch_metrics(self, mode: str) -> None:
        accumulator = self._metrics[mode]
        accumulator.sync()  # sums over processes, so every rank logs the same global values
        values = accumulator.compute()
        accumulator.reset()
        if values["n_frames"] <= 0:
            return
        outlier = values["outlier_pct"] if self._hp.outlier_rule == "and" else values["outlier_or_pct"]
        metrics = {
            f"{mode}/aee": values["aee"],
            f"{mode}/outlier_pct": outlier,
            f"{mode}/outlier_or_pct": values["outlier_or_pct"],
            f"{mode}/n_valid_px": values["n_valid_px"],
        }
        for name, value in metrics.items():
            self.log(name, float(value), sync_dist=True)

    def on_validation_epoch_start(self) -> None:
        """Starts a new metric accumulation."""
        self._metrics["val"].reset()

    def on_validation_epoch_end(self) -> None:
        """Logs ``val/aee``, ``val/outlier_pct``, ``val/outlier_or_pct`` and ``val/n_valid_px``."""
        self._log_epoch_metrics("val")

    def on_test_epoch_start(self) -> None:
        """Starts a new metric accumulation."""
        self._metrics["test"].reset()

    def on_test_epoch_end(self) -> None:
        """Logs ``test/aee``, ``test/outlier_pct``, ``test/outlier_or_pct`` and ``test/n_valid_px``."""
        self._log_epoch_metrics("test")

    def on_validation_start(self) -> None:
        """Keeps the training recurrent state aside: validation streams other recordings."""
        self._stashed_states = self.network.get_states()
        forget_states(self.network)

    def on_test_start(self) -> None:
        """Test recordings start from an empty recurrent state."""
        forget_states(self.network)

    def on_train_start(self) -> None:
        """Training starts from an empty recurrent state."""
        forget_states(self.network)

    def on_validation_end(self) -> None:
        """Gives the training recurrent state back."""
        if self._stashed_states is not None:
            self.network.set_states(self._stashed_states)
            self._stashed_states = None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with the model's learning rate, betas (0.9, 0.999); no scheduler."""
        return torch.optim.Adam(self.parameters(), lr=self._hp.learning_rate, betas=(0.9, 0.999))

    # ------------------------------------------------------------------------------------------------------- video

    def demo_video(
        self,
        test_data: Any,
        log_dir: str | os.PathLike[str] = ".",
        epoch: int = 0,
        num_batches: int = 100,
        write_video: bool = True,
        show_video: bool = False,
        mask_by_input: bool = True,
        batch_size: int | None = None,
    ) -> Path | None:
        """Renders the predicted flow over ``num_batches`` batches of ``test_data``'s recordings as an mp4.

        A loader of its own streams the files (chunks of ``max(1, num_batches // 10)`` batches, so the video shows
        the state resets), in eval mode without gradients; the caller's loader and the training recurrent state are
        left as they were. Samples are tiled in a grid of ``2**((B.bit_length() - 1) // 2)`` rows.

        Args:
            test_data: a loader with ``files`` (e.g. :class:`~opsin.eventflow.data.SequentialDataLoader`) or a
                sequence of recording paths.
            log_dir: the video goes to ``log_dir/videos/video#{epoch}.mp4``.
            epoch: the number in the file name.
            num_batches: batches to render (T frames each).
            write_video: write the file (False: only run the network).
            show_video: unsupported (headless OpenCV); only warns.
            mask_by_input: draw flow only where the input has events.
            batch_size: B (default: the loader's, else 4).

        Returns:
            The video path, or None when ``write_video`` is False.

        Raises:
            EventFlowError: the video cannot be written.
        """
        import cv2

        from opsin.eventflow.data import SequentialDataLoader
        from opsin.eventflow.viz import draw_flow_on_grid

        if show_video:
            warnings.warn("show_video is not supported with headless OpenCV; writing the file only", stacklevel=2)
        files = [str(f) for f in getattr(test_data, "files", test_data)]
        if not files:
            message = "demo_video needs at least one recording"
            raise ConfigError(message)
        hp: Any = self.hparams
        n_b = int(batch_size or getattr(test_data, "batch_size", 0) or 4)
        loader = SequentialDataLoader(
            files,
            hp.delta_t,
            hp.preprocess,
            hp.array_dim,
            batch_size=n_b,
            num_workers=0,
            preprocess_kwargs=hp.preprocess_kwargs,
            padding=True,
            max_consecutive_batch=max(1, num_batches // 10),
        )
        n_t, _, height, width = hp.array_dim
        nrows = 2 ** ((n_b.bit_length() - 1) // 2)
        ncols = math.ceil(n_b / nrows)
        make_img = get_preprocess_info(hp.preprocess, hp.preprocess_kwargs)["viz"]
        path = Path(log_dir) / "videos" / f"video#{epoch}.mp4"
        tmp = path.with_name(f".{path.stem}.partial.mp4")
        writer = None
        if write_video:
            path.parent.mkdir(parents=True, exist_ok=True)
            fps = max(1, round(1e6 / hp.delta_t))
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (ncols * width, nrows * height))
            if not writer.isOpened():
                message = f"{tmp}: OpenCV cannot open an mp4v video writer"
                raise EventFlowError(message)
        was_training = self.training
        states = self.network.get_states()
        forget_states(self.network)
        self.eval()
        try:
            with torch.no_grad():
                for index, batch in enumerate(loader):
                    if index >= num_batches:
                        break
                    inputs = batch["inputs"].to(self.device)
                    self.reset_memory(batch["mask_keep_memory"].to(self.device))
                    flows = [f.float().cpu().numpy() for f in self.network(inputs)]
                    grid = np.zeros((n_t, nrows * height, ncols * width, 3), dtype=np.uint8)
                    draw_flow_on_grid(
                        inputs.cpu().numpy(),
                        flows,
                        grid,
                        make_img,
                        mask_by_input=mask_by_input,
                        draw_dense=bool(hp.draw_dense),
                    )
                    if writer is not None:
                        for frame in grid:
                            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if writer is not None:
                writer.release()
                writer = None
                os.replace(tmp, path)
        finally:
            if writer is not None:
                writer.release()
                tmp.unlink(missing_ok=True)
            self.network.set_states(states)
            self.train(was_training)
        if not write_video:
            return None
        _log.info("demo video written: %s", path)
        return path


def load_flow_model(path: str | os.PathLike[str], map_location: str = "cpu") -> FlowModel:
    """Loads a ``FlowModel`` checkpoint (no data module needed), in eval mode.

    Raises:
        FileNotFoundError: no such file.
        FormatError: the file is not a checkpoint, or one of another model or architecture (names the file).
    """
    path = Path(path)
    if not path.is_file():
        message = f"{path}: no such checkpoint file"
        raise FileNotFoundError(message)
    try:
        model = FlowModel.load_from_checkpoint(str(path), map_location=map_location)
    except Exception as exc:  # unpickling, a foreign model or a state-dict mismatch: all mean "not usable"
        reason = " ".join(str(exc).split())[:300]
        message = f"not a usable FlowModel checkpoint ({type(exc).__name__}: {reason})"
        raise FormatError(path, None, message) from exc
    model.eval()
    return model
