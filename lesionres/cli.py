"""Command line: ``python -m lesionres COMMAND`` (fit, validate, test, predict, synth, check,
degrade, score, benchmark, analyze, study).

``fit``/``validate``/``test``/``predict`` go through LightningCLI (``--help``, ``--config``,
``--print_config``); the other subcommands are plain functions dispatched first. Without a
``--config``, the shipped ``default.yaml`` (the synthetic dataset, sized for a CPU) applies.
Expected failures print one line, ``error: <file or option>: <problem>``, and exit with 2.
"""

from __future__ import annotations

import logging
import sys
import warnings
from importlib import resources
from pathlib import Path

__all__ = ["CONFIG_DIR", "default_precision", "main"]

CONFIG_DIR = Path(str(resources.files("lesionres") / "configs"))
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# LesionSegmenter arguments that a test/predict command may change on a trained checkpoint
EVALUATION_SETTINGS = (
    "threshold",
    "inference",
    "window",
    "overlap",
    "connectivity",
    "empty_convention",
    "hd95",
)
USAGE = """usage: python -m lesionres COMMAND [options]

Lightning commands (each takes --help, --config FILE, --print_config):
  fit        train the 3D U-Net (default: built-in synthetic data, CPU-sized)
  validate   validation metrics of a checkpoint (--ckpt_path)
  test       score the test scans under every resolution condition -> results.csv
  predict    lesion masks for new scans, written in each scan's own space
Other commands:
  synth      write the synthetic ATLAS-like / ISLES-like datasets
  check      validate a dataset before training (readable, finite, binary masks, geometry)
  degrade    write every scan under every test condition as NIfTI (for any other tool)
  score      score prediction masks against ground truth into results.csv
  benchmark  run any models (command lines, a checkpoint) under every condition, score, compare
  analyze    statistics, tables, figures and report from results.csv
  study      fit, test and analyze in one run folder

Shipped configs (pass the name to --config): {configs}
"""


def _resolve_configs(args: list[str]) -> list[str]:
    """Let ``--config paper.yaml`` find the configs shipped in the package."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if (
            arg == "--config"
            and not Path(out[i + 1]).exists()
            and (CONFIG_DIR / out[i + 1]).exists()
        ):
            out[i + 1] = str(CONFIG_DIR / out[i + 1])
    for i, arg in enumerate(out):
        name = arg.partition("=")[2]
        if arg.startswith("--config=") and not Path(name).exists() and (CONFIG_DIR / name).exists():
            out[i] = f"--config={CONFIG_DIR / name}"
    return out


def _lightning_cli(args: list[str]):
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.cli import LightningCLI

    from lesionres.callbacks import SaveLast, SaveOnInterrupt, find_last_checkpoint
    from lesionres.data.datamodule import LesionDataModule
    from lesionres.errors import LesionresError
    from lesionres.module import LesionSegmenter
    from lesionres.prediction import MaskWriter
    from lesionres.results import ResultsWriter

    class LesionCLI(LightningCLI):
        """LightningCLI with the results writer and checkpointing always configured."""

        def add_arguments_to_parser(self, parser) -> None:
            parser.set_defaults({"trainer.precision": default_precision(args[0])})
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
            # Lightning replaces every --model.* value with the checkpoint's hyperparameters;
            # architecture must come from the checkpoint, but evaluation settings from this command.
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
            self._check_checkpoint_fits()

        def before_validate(self) -> None:
            self._check_checkpoint_fits()

        def before_predict(self) -> None:
            self._check_checkpoint_fits()

        def _check_checkpoint_fits(self) -> None:
            ckpt = self.config_init[self.subcommand].get("ckpt_path")
            if ckpt and ckpt not in ("last", "best"):
                _check_state_dict(Path(ckpt), self.model.state_dict())

        def after_fit(self) -> None:
            callback = self.trainer.checkpoint_callback
            if callback is None or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
                return
            score = callback.best_model_score
            best = f"{float(score):.4f}" if score is not None else "n/a"
            print(f"\nBest validation Dice: {best}")
            print(f"Best checkpoint:      {callback.best_model_path}")
            print(f"Last checkpoint:      {Path(callback.dirpath) / 'last.ckpt'}")
            logger = (
                self.trainer.logger
            )  # not trainer.log_dir: a collective, and only rank 0 is here
            if logger is not None and logger.log_dir:
                print(f"TensorBoard:          tensorboard --logdir {Path(logger.log_dir).parent}")

    # main() always passes args explicitly, also when they came from sys.argv
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
    warnings.filterwarnings(
        "ignore", message=r".*isinstance\(treespec, LeafSpec\).*"
    )  # Lightning internals
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda record: "Tip:" not in str(record.msg))  # ads
    return LesionCLI(
        LesionSegmenter,
        LesionDataModule,
        args=args,
        save_config_kwargs={"overwrite": True},
    )


def default_precision(command: str = "fit") -> str:
    """The precision a Lightning command runs in when its config names none (or says ``auto``).

    On a GPU with bfloat16: ``bf16-mixed``. On a CPU, training stays ``32-true``: bf16 autocast
    made a training step 2.8x faster on this project's AVX512-BF16/AMX CPU but the default fit
    reached a best validation Dice of 0.67-0.70 instead of 0.76 (BENCHMARKS.md); inference
    (``validate``/``test``/``predict``) uses ``bf16-mixed`` where the CPU runs bfloat16
    natively: 2.3x faster, and the same validation Dice to 4e-4 on the same checkpoint.
    """
    import torch

    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        torch.cpu, "_is_amx_tile_supported", lambda: False
    )()
    return "bf16-mixed" if native and command != "fit" else "32-true"


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

    from lesionres.errors import LesionresError

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
    from lesionres.errors import LesionresError

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


def main(args: list[str] | None = None) -> int | None:
    """Entry point; ``args`` defaults to ``sys.argv[1:]`` (tests pass a list)."""
    from lesionres.errors import LesionresError

    args = list(sys.argv[1:] if args is None else args)
    if not args or args[0] in ("-h", "--help"):
        configs = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
        print(USAGE.format(configs=configs))
        return 0
    command, rest = args[0], args[1:]
    try:
        if command in LIGHTNING_COMMANDS:
            if not any(a == "--config" or a.startswith("--config=") for a in rest) and not any(
                a in ("-h", "--help") for a in rest
            ):
                rest = ["--config", str(CONFIG_DIR / "default.yaml"), *rest]
            _lightning_cli(_resolve_precision([command, *_resolve_configs(rest)]))
            return 0
        runner = _plain_command(command)
        return runner(rest)
    except LesionresError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except SystemExit as exit_:
        if type(exit_).__name__ == "SIGTERMException":  # Lightning exits 0 on SIGTERM; we don't
            raise SystemExit(143) from None
        raise


def _plain_command(command: str):
    from lesionres.errors import LesionresError

    if command == "synth":
        from lesionres.data.synthetic import synth_main

        return synth_main
    if command == "check":
        from lesionres.data.validation import check_main

        return check_main
    if command == "degrade":
        from lesionres.degrade import degrade_main

        return degrade_main
    if command == "score":
        from lesionres.scoring import score_main

        return score_main
    if command == "benchmark":
        from lesionres.benchmark import benchmark_main

        return benchmark_main
    if command == "analyze":
        from lesionres.analysis import analyze_main

        return analyze_main
    if command == "study":
        from lesionres.study import study_main

        return study_main
    raise LesionresError(f"unknown command {command!r}; run `python -m lesionres --help`")
