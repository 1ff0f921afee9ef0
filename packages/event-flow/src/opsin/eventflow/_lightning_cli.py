"""``opsin-eventflow fit|validate|test``: a LightningCLI for FlowModel and FlowDataModule.

The model's ``delta_t``, ``preprocess``, ``array_dim`` and ``preprocess_kwargs`` are linked to the data module, so a
config states them once (under ``model:``). ``--config NAME`` also accepts the name of a config shipped with the
package (``flow`` or ``demo``, with or without ``.yaml``). ``--ckpt_path last`` resumes from the newest ``last*.ckpt``
under the run's root folder (Lightning alone only looks in the new run's own version folder). ``fit --ckpt_path``
with a weights-only checkpoint (the shipped pretrained models, or a pretrained model's name such as
``eminet16-synth``) fine-tunes: training starts at epoch 0 from those weights, with the config's optimizer settings,
and only the checkpoint's architecture arguments override the config. A mixed-precision
16-bit run without CUDA falls back to 32-bit with a warning, so the shipped config also trains on a CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from opsin.core import CliError, ExitCode, get_logger
from opsin.eventflow.data_module import FlowDataModule
from opsin.eventflow.errors import FormatError
from opsin.eventflow.lightning_model import FlowModel

__all__ = ["SUBCOMMANDS", "FlowCLI", "config_path", "run_lightning_cli", "shipped_configs"]

_log = get_logger(__name__)

SUBCOMMANDS = ("fit", "validate", "test")
_LINKED = ("delta_t", "preprocess", "array_dim", "preprocess_kwargs")
_HALF = ("16-mixed", "16", "16-true")
# The FlowModel arguments that give a checkpoint's weights their shapes and meaning: a fine-tuning run takes these
# from the checkpoint and everything else (learning rate, array_dim, losses) from its config.
_ARCHITECTURE = ("delta_t", "preprocess", "preprocess_kwargs", "feature_extractor_name", "network_kwargs")


def shipped_configs() -> list[str]:
    """Names of the configs shipped with the package (``flow``, ``demo``)."""
    folder = resources.files("opsin.eventflow") / "configs"
    return sorted(Path(p.name).stem for p in folder.iterdir() if p.name.endswith(".yaml"))


def config_path(name: str) -> str:
    """An existing config file as given, else the shipped config of that name (``flow``, ``flow.yaml``).

    Raises:
        FileNotFoundError: neither a file nor a shipped config name.
    """
    if Path(name).is_file():
        return name
    stem = Path(name).name.removesuffix(".yaml")
    candidate = resources.files("opsin.eventflow") / "configs" / f"{stem}.yaml"
    if Path(name).name == name and candidate.is_file():
        return str(candidate)
    message = f"--config {name}: no such file, and not a shipped config ({', '.join(shipped_configs())})"
    raise FileNotFoundError(message)


def _resolve_config_args(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    iterator = iter(args)
    for arg in iterator:
        if arg in ("-c", "--config"):
            value = next(iterator, None)
            if value is None:
                message = f"{arg} needs a value (a YAML file or one of {', '.join(shipped_configs())})"
                raise CliError(message, ExitCode.USAGE)
            out += [arg, config_path(value)]
        elif arg.startswith("--config="):
            out.append("--config=" + config_path(arg.split("=", 1)[1]))
        else:
            out.append(arg)
    return out


def _newest_last_checkpoint(roots: Sequence[str | Path]) -> Path | None:
    found = [p for root in roots if Path(root).is_dir() for p in Path(root).rglob("last*.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


class FlowCLI(LightningCLI):
    """LightningCLI with FlowModel and FlowDataModule, their linked arguments and the opsin defaults.

    Args:
        args: the arguments (``["fit", "--config", "flow", ...]``); None reads ``sys.argv``.
        run: run the subcommand (False: only parse and instantiate).
        **kwargs: further :class:`~lightning.pytorch.cli.LightningCLI` arguments.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        strict = {"exit_on_error": False}
        kwargs.setdefault("parser_kwargs", {"exit_on_error": False, **{name: dict(strict) for name in SUBCOMMANDS}})
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 123)
        kwargs.setdefault(
            "trainer_defaults", {"use_distributed_sampler": False, "reload_dataloaders_every_n_epochs": 1}
        )
        # (path, checkpoint) of a weights-only checkpoint given to fit, set while the arguments are parsed.
        self._fine_tune_from: tuple[str, dict[str, Any]] | None = None
        super().__init__(FlowModel, FlowDataModule, args=list(args) if args is not None else None, run=run, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test (predict is not offered: ``evaluate`` and ``export`` cover inference)."""
        return {name: spec for name, spec in LightningCLI.subcommands().items() if name in SUBCOMMANDS}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Links the model's data-shaping arguments to the data module."""
        for key in _LINKED:
            parser.link_arguments(f"model.{key}", f"data.{key}")

    def _parse_ckpt_path(self) -> None:
        """Takes the model arguments of ``--ckpt_path`` (validate/test), leaving out the values derived from them.

        A checkpoint's hyper-parameters also hold ``num_tbins``, ``cin``, ``height`` and ``width`` (read from
        ``array_dim``), which are no ``FlowModel`` arguments; Lightning would pass them on and fail.
        """
        import inspect

        import torch

        from opsin.eventflow import pretrained

        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path in pretrained.MODELS and not Path(ckpt_path).exists():
            ckpt_path = str(pretrained.checkpoint_path(ckpt_path))
            self.config[subcommand].ckpt_path = ckpt_path
        if (
            not ckpt_path
            or ckpt_path in ("last", "best", "hpc")
            or "://" in ckpt_path
            or ckpt_path.startswith("registry")
        ):
            return  # Lightning's own keywords, remote files and model-registry names are Lightning's to resolve
        if not Path(ckpt_path).is_file():
            names = ", ".join(sorted(pretrained.MODELS))
            message = (
                f"--ckpt_path {ckpt_path}: no such file (give a checkpoint, 'last', or a pretrained model: {names})"
            )
            raise FileNotFoundError(message)
        try:
            ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu")
        except Exception as exc:  # unpickling errors come in many types
            message = f"not a readable checkpoint ({type(exc).__name__}); give a checkpoint written by fit"
            raise FormatError(ckpt_path, None, message) from None
        accepted = set(inspect.signature(FlowModel.__init__).parameters) - {"self"}
        if subcommand == "fit" and "optimizer_states" not in ckpt:
            accepted &= set(_ARCHITECTURE)  # fine-tuning: the config keeps its training settings
            self._fine_tune_from = (ckpt_path, ckpt)
        hparams = {k: v for k, v in dict(ckpt.get("hyper_parameters") or {}).items() if k in accepted}
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def before_instantiate_classes(self) -> None:
        """Falls back from 16-bit mixed precision to 32-bit where CUDA is not available."""
        import torch

        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        accelerator = str(trainer.get("accelerator") or "auto")
        on_cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
        if str(trainer.get("precision")) in _HALF and not on_cuda:
            _log.warning("precision %r needs CUDA; training in '32-true' on this machine", trainer.precision)
            trainer.precision = "32-true"

    def before_fit(self) -> None:
        """Resolves ``--ckpt_path`` before training.

        ``last`` resumes the newest ``last*.ckpt`` of earlier runs under the same root folder; a weights-only
        checkpoint is loaded into the model and training starts from there at epoch 0 (fine-tuning).
        """
        config = self.config_init[self.subcommand]
        if self._fine_tune_from is not None:
            self._start_from_weights(config, *self._fine_tune_from)
            return
        if config.get("ckpt_path") != "last":
            return
        trainer = self.trainer
        roots = [trainer.default_root_dir]
        callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
        roots += [str(cb.dirpath) for cb in callbacks if cb.dirpath]
        roots += [str(logger.save_dir) for logger in trainer.loggers if getattr(logger, "save_dir", None)]
        found = _newest_last_checkpoint(roots)
        if found is None:
            _log.warning("--ckpt_path last: no last checkpoint under %s; training from scratch", ", ".join(roots))
            config.ckpt_path = None
            return
        _log.info("resuming from %s", found)
        config.ckpt_path = str(found)

    def _start_from_weights(self, config: Any, path: str, ckpt: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(ckpt["state_dict"])
        except (KeyError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:300]
            message = f"its weights do not fit the model of this config ({reason})"
            raise FormatError(path, None, message) from None
        _log.info("fine-tuning from the weights of %s (a weights-only checkpoint: training starts at epoch 0)", path)
        config.ckpt_path = None


def run_lightning_cli(subcommand: str, args: Sequence[str]) -> None:
    """Runs ``FlowCLI`` for one subcommand; parse errors become one-line :class:`CliError` s (exit code 2).

    Args:
        subcommand: ``fit``, ``validate`` or ``test``.
        args: the remaining command-line arguments.
    """
    from jsonargparse import ArgumentError

    if subcommand not in SUBCOMMANDS:
        message = f"unknown subcommand {subcommand!r}; choices: {', '.join(SUBCOMMANDS)}"
        raise CliError(message, ExitCode.USAGE)
    argv = [subcommand, *_resolve_config_args(args)]
    try:
        with warnings.catch_warnings():
            # The arguments come from our own command line, so Lightning's "args and sys.argv" caution does not apply;
            # without tensorboard the CSV logger is the expected default.
            warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
            warnings.filterwarnings("ignore", message=".*tensorboardX.*")
            FlowCLI(argv)
    except ArgumentError as exc:
        message = " ".join(str(exc).split())
        raise CliError(f"{subcommand}: {message} (see 'opsin-eventflow {subcommand} --help')", ExitCode.USAGE) from exc
