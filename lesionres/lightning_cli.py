"""The Lightning commands (``fit``, ``validate``, ``test``, ``predict``): :class:`LesionCLI`.

LightningCLI builds them from :class:`~lesionres.module.LesionSegmenter` and
:class:`~lesionres.data.datamodule.LesionDataModule` (``--help``, ``--config``,
``--print_config``). Without a ``--config``, the shipped ``default.yaml`` is the default config
file (listed in ``--help``): the synthetic dataset, sized for a CPU. A ``--config`` replaces it
(paper.yaml and the others are complete runs of their own), so that a config means the same
with or without the default one. :func:`run_lightning` is the one way in (``cli.main``,
``study`` and ``benchmark`` call it); it raises :class:`~lesionres.errors.LesionresError`,
which ``cli.main`` prints.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI

from lesionres.callbacks import SaveLast, SaveOnInterrupt, find_last_checkpoint
from lesionres.config_files import DEFAULT_CONFIG, find_config
from lesionres.data.datamodule import LesionDataModule
from lesionres.errors import LesionresError
from lesionres.module import LesionSegmenter
from lesionres.precision import default_precision
from lesionres.prediction import MaskWriter
from lesionres.results import ResultsWriter

__all__ = ["LesionCLI", "run_lightning"]

# LesionSegmenter arguments that a test/predict command may change on a trained checkpoint
EVALUATION_SETTINGS = (
    "threshold", "inference", "window", "overlap", "connectivity", "empty_convention", "hd95",
)  # fmt: skip


class LesionCLI(LightningCLI):
    """LightningCLI with the results writer and checkpointing always configured.

    Before ``fit`` and ``test`` it reads every file of the dataset (and of the external test
    cohorts) and stops with every problem listed; before any command on a checkpoint it checks
    that the checkpoint fits the configured model.

    Args:
        command: The Lightning command being run (``fit``, ``validate``, ``test``, ``predict``):
            the default precision depends on it.
        **kwargs: :class:`~pytorch_lightning.cli.LightningCLI`'s arguments.
    """

    def __init__(self, *args, command: str = "fit", **kwargs) -> None:
        self.command = command
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        """The results and mask writers and checkpointing as configurable callbacks; the
        precision of the command run (:func:`default_precision`) when the config names none."""
        parser.set_defaults({"trainer.precision": default_precision(self.command)})
        parser.add_lightning_class_args(ResultsWriter, "results")
        parser.add_lightning_class_args(MaskWriter, "predictions")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_dice",
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,  # SaveLast writes last.ckpt every epoch
                "checkpoint.filename": "best-{epoch:03d}-{val_dice:.3f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def _parse_ckpt_path(self) -> None:
        """Architecture from the checkpoint, evaluation settings from this command.

        Lightning replaces every ``--model.*`` value with the checkpoint's hyperparameters.
        """
        subcommand = self.config.get("subcommand")
        model = self.config[subcommand].get("model") if subcommand else None
        chosen = {key: model[key] for key in EVALUATION_SETTINGS if model and key in model}
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt and ckpt not in ("last", "best"):
            _load_checkpoint(Path(ckpt))
        super()._parse_ckpt_path()
        for key, value in chosen.items():
            self.config[subcommand]["model"][key] = value

    def before_fit(self) -> None:
        """Add the last-checkpoint callbacks; start from ``init_weights``; find the newest
        ``last.ckpt`` of any run for ``--ckpt_path last``."""
        self.trainer.callbacks += [SaveLast(), SaveOnInterrupt()]
        init = self.model.hparams.get("init_weights")
        if init:  # a resumed run (--ckpt_path) then overwrites these with its own weights
            self.model.load_state_dict(_check_state_dict(Path(init), self.model.state_dict()))
            print(f"Starting from the weights of {init}")
        if self.config_init[self.subcommand].get("ckpt_path") == "last":
            # Lightning's "last" only looks in this new run's empty folder: search all runs
            logger = self.trainer.logger
            root = (
                Path(logger.save_dir) / (logger.name or "")
                if logger
                else Path(self.trainer.default_root_dir)
            )
            last = find_last_checkpoint(root)
            if last is None:
                raise LesionresError(f"{root}: no last.ckpt to resume from (--ckpt_path last)")
            print(f"Resuming from {last}")
            self.config_init[self.subcommand]["ckpt_path"] = str(last)

    def before_test(self) -> None:
        """Check that the checkpoint fits the model."""
        self._check_checkpoint_fits()

    def before_validate(self) -> None:
        """Check that the checkpoint fits the model."""
        self._check_checkpoint_fits()

    def before_predict(self) -> None:
        """Check that the checkpoint fits the model."""
        self._check_checkpoint_fits()

    def _check_checkpoint_fits(self) -> None:
        """One clear line when ``--ckpt_path``'s weights do not fit the configured model."""
        ckpt = self.config_init[self.subcommand].get("ckpt_path")
        if ckpt and ckpt not in ("last", "best"):
            _check_state_dict(Path(ckpt), self.model.state_dict())

    def after_fit(self) -> None:
        """Print the best validation Dice, the checkpoints and the TensorBoard command."""
        callback = self.trainer.checkpoint_callback
        if callback is None or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        score = callback.best_model_score
        best = f"{float(score):.4f}" if score is not None else "n/a"
        print(f"\nBest validation Dice: {best}")
        print(f"Best checkpoint:      {callback.best_model_path}")
        print(f"Last checkpoint:      {Path(callback.dirpath) / 'last.ckpt'}")
        logger = self.trainer.logger  # not trainer.log_dir: a collective, and only rank 0 is here
        if logger is not None and logger.log_dir:
            print(f"TensorBoard:          tensorboard --logdir {Path(logger.log_dir).parent}")


def _resolve_precision(args: list[str]) -> list[str]:
    """``--trainer.precision auto`` becomes :func:`default_precision` of the command."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--trainer.precision=auto":
            out[i] = f"--trainer.precision={default_precision(out[0])}"
        elif arg == "--trainer.precision" and i + 1 < len(out) and out[i + 1] == "auto":
            out[i + 1] = default_precision(out[0])
    return out


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint read safely (``weights_only=True``), or one clear line saying why not."""
    import pickle
    import zipfile

    import torch

    if not path.is_file():
        raise LesionresError(f"{path}: checkpoint file not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise LesionresError(
            f"{path}: not a PyTorch checkpoint (expected a .ckpt written by `lesionres fit`)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - anything unreadable is the same problem here
        unsafe = isinstance(error, pickle.UnpicklingError)
        why = (
            "holds objects other than tensors and plain data, which are not unpickled for "
            "safety (weights_only=True); load only checkpoints you trust, written by lesionres"
            if unsafe
            else f"unreadable checkpoint ({type(error).__name__})"
        )
        raise LesionresError(f"{path}: {why}") from None
    if not isinstance(checkpoint, dict):
        raise LesionresError(f"{path}: not a Lightning checkpoint of lesionres")
    return checkpoint


def _check_state_dict(path: Path, expected: dict) -> dict:
    """The checkpoint's weights; one clear line when they do not fit the model being run."""
    state = _load_checkpoint(path).get("state_dict")
    if not isinstance(state, dict):
        raise LesionresError(f"{path}: no state_dict: not a Lightning checkpoint of lesionres")
    missing, unexpected = (
        sorted(expected.keys() - state.keys()),
        sorted(state.keys() - expected.keys()),
    )
    shapes = [
        k for k in sorted(expected.keys() & state.keys()) if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        example = (
            f"{shapes[0]}: checkpoint {tuple(state[shapes[0]].shape)} "
            f"vs model {tuple(expected[shapes[0]].shape)}"
            if shapes
            else (missing or unexpected)[0]
        )
        raise LesionresError(
            f"{path}: does not fit the model configuration ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(shapes)} differently shaped weights; "
            f"e.g. {example})"
        )
    return state


def _resolve_configs(args: list[str]) -> list[str]:
    """Let ``--config paper.yaml`` find the configs shipped in the package."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg == "--config" and not Path(out[i + 1]).exists():
            out[i + 1] = str(find_config(out[i + 1]))
    for i, arg in enumerate(out):
        if arg.startswith("--config=") and not Path(arg.partition("=")[2]).exists():
            out[i] = f"--config={find_config(arg.partition('=')[2])}"
    return out


def _quiet_lightning() -> None:
    """Silence what is not ours to fix: run_lightning passes args explicitly, Lightning's own
    deprecation of a torch internal, and its adverts ("Tip: ...")."""
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda record: "Tip:" not in str(record.msg))


def run_lightning(args: list[str]) -> LesionCLI:
    """Run one Lightning command: ``args`` is ``[command, options...]``.

    Shipped configs are found by name; ``--trainer.precision auto`` and a config without
    precision get :func:`default_precision` of the command; without ``--config`` (and without
    ``--help``), ``default.yaml`` is the default config file.

    Raises:
        LesionresError: bad data, checkpoint or option (one line, printed by ``cli.main``).
    """
    command, rest = args[0], _resolve_configs(args[1:])
    configured = any(a == "--config" or a.startswith("--config=") for a in rest)
    defaults = {} if configured else {command: {"default_config_files": [str(DEFAULT_CONFIG)]}}
    _quiet_lightning()
    return LesionCLI(
        LesionSegmenter,
        LesionDataModule,
        command=command,
        args=_resolve_precision([command, *rest]),
        parser_kwargs=defaults,
        save_config_kwargs={"overwrite": True},
    )
