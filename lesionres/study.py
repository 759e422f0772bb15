"""``python -m lesionres study``: fit, test under every condition, and analyze, in one run folder.

Layout of the run folder (``--out``, default ``runs/study-<date-time>``)::

    fit/            TensorBoard logs, config, split.json, checkpoints/ (best and last)
    test/           TensorBoard logs of the test run
    results.csv     one row per (scan, condition)
    predictions/    predicted masks per condition (NIfTI, on each mask's grid)
    report/         tables, figures and report.md

With ``--models none,synthseg`` (resolution-augmentation presets) one model is trained per
name, with the same seed and split, in ``fit-<name>/`` and tested into the same
``results.csv`` with a ``model`` column; the report then compares the models condition by
condition (paired Wilcoxon on the same scans, Holm-corrected) and draws one resolution curve
per model. Predictions are saved for the first model only. With ``--finetune EPOCHS`` a
shared model is trained first (``fit-shared/``, no resolution augmentation) and each model is
a copy of it fine-tuned for EPOCHS epochs with its own augmentation (``none``: plain further
training), so the models start equal and get the same training budget.

``--margin METRIC=VALUE ...`` and ``--reference CONDITION`` go to ``analyze``: the report judges
every condition non-inferior, equivalent, inferior or inconclusive against the reference
within the margins (default ``dice=0.02``; ``--margin none`` for no margin analysis).

Every other option is passed to both ``fit`` and ``test`` (e.g. ``--config paper.yaml``,
``--data.root``, ``--trainer.max_epochs``). Rerunning with the same ``--out`` resumes: a
finished fit is reused, and ``test`` skips rows already in ``results.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lesionres.errors import LesionresError

__all__ = ["study_main"]

RESOLUTION_PRESETS = ("none", "nnunet", "synthseg", "sweep")


def _run_overrides(out: Path, version: str) -> list[str]:
    return [
        "--trainer.logger.class_path", "pytorch_lightning.loggers.TensorBoardLogger",
        "--trainer.logger.init_args.save_dir", str(out),
        "--trainer.logger.init_args.name", "",
        "--trainer.logger.init_args.version", version,
    ]  # fmt: skip


def _best_checkpoint(folder: Path) -> Path | None:
    best = sorted(folder.glob("best-*.ckpt"))  # best-<epoch>-<val_dice>.ckpt
    return max(best, key=lambda p: float(p.stem.rsplit("-", 1)[1])) if best else None


def _data_root(run_config: Path) -> str | None:
    """The ``data.root`` the fit used (for the report's overlays of image, truth, prediction)."""
    import yaml

    if not run_config.exists():
        return None
    root = (yaml.safe_load(run_config.read_text()) or {}).get("data", {}).get("root")
    return root if root and Path(root).is_dir() else None


def _fit(out: Path, name: str, args: list[str], which: str = "best") -> Path:
    """Train (or reuse, or resume) the model of ``out/name``; its best (or last) checkpoint."""
    from lesionres.cli import main

    checkpoints = out / name / "checkpoints"
    last = checkpoints / "last.ckpt"
    if (out / name / "done").exists():
        print(f"Reusing the finished fit in {out / name}")
    else:
        resume = ["--ckpt_path", str(last)] if last.exists() else []
        main(["fit", *args, *_run_overrides(out, name), *resume])
        (out / name / "done").touch()
    chosen = _best_checkpoint(checkpoints) if which == "best" else None
    chosen = chosen or (last if last.exists() else None)
    if chosen is None:
        raise LesionresError(f"{checkpoints}: fit wrote no checkpoint")
    return chosen


def _test(
    out: Path, passthrough: list[str], model: str | None, checkpoint: Path, save_predictions: bool
) -> None:
    """Append the test rows of ``checkpoint`` to ``out/results.csv``."""
    from lesionres.cli import main

    print(f"\nTesting {checkpoint}")
    main(
        [
            "test",
            *passthrough,
            *_run_overrides(out, "test" if model is None else f"test-{model}"),
            "--ckpt_path", str(checkpoint),
            "--results.path", str(out / "results.csv"),
            "--results.save_predictions", str(save_predictions).lower(),
            *(["--results.model", model] if model is not None else []),
        ]
    )  # fmt: skip


def _augmentation_args(model: str) -> list[str]:
    args = ["--data.resolution_augmentation", model]
    if model == "none":  # the baseline: no augmentation, whatever options the config sets
        args += ["--data.resolution_options", "null"]
    return args


def study_main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``study``."""
    from lesionres.analysis import analyze
    from lesionres.analysis.noninferiority import parse_margins

    parser = argparse.ArgumentParser(
        prog="lesionres study",
        description="fit, then test under every resolution condition, then analyze",
        epilog="Other options go to both fit and test, e.g. --config paper.yaml --data.root DIR.",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run folder (default runs/study-<time>)"
    )
    parser.add_argument("--metric", default="dice", help="metric compared across conditions")
    parser.add_argument(
        "--margin",
        nargs="+",
        action="extend",
        default=None,
        metavar="METRIC=VALUE",
        help="non-inferiority margins for the report, e.g. dice=0.02 hd95_mm=2 (default: "
        "dice=0.02; 'none': no margin analysis)",
    )
    parser.add_argument(
        "--reference", default=None, help="condition the others must be as good as (original)"
    )
    parser.add_argument(
        "--models",
        default=None,
        help="train and compare one model per resolution-augmentation preset, e.g. none,sweep "
        f"(choices: {', '.join(RESOLUTION_PRESETS)})",
    )
    parser.add_argument(
        "--finetune",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="with --models: train one shared model first (no resolution augmentation), then "
        "fine-tune a copy of it for EPOCHS epochs per model, so that the models differ only in "
        "their augmentation",
    )
    parser.add_argument(
        "--finetune-lr",
        type=float,
        default=None,
        help="learning rate of the fine-tuning (default: --model.lr)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="checkpoint each model is tested with: best validation Dice (at the original "
        "resolution) or the last epoch's (fairer between models trained on different inputs)",
    )
    args, passthrough = parser.parse_known_args(argv)
    parse_margins(args.margin)  # a malformed margin stops here, not after hours of training
    models: list[str | None] = [None]
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in models if m not in RESOLUTION_PRESETS]
        if unknown or len(set(models)) != len(models):
            raise LesionresError(
                f"--models: expected distinct names from {', '.join(RESOLUTION_PRESETS)}, "
                f"got {args.models!r}"
            )
    if args.finetune is not None and (not args.models or args.finetune < 1):
        raise LesionresError("--finetune needs --models and a positive number of epochs")
    out = args.out or Path("runs") / time.strftime("study-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    start: list[str] = []
    if args.finetune:
        shared = _fit(out, "fit-shared", [*passthrough, *_augmentation_args("none")])
        start = ["--model.init_weights", str(shared), "--trainer.max_epochs", str(args.finetune)]
        start += ["--model.lr", str(args.finetune_lr)] if args.finetune_lr else []
    for i, model in enumerate(models):
        extra = [] if model is None else [*_augmentation_args(model), *start]
        name = "fit" if model is None else f"fit-{model}"
        checkpoint = _fit(out, name, [*passthrough, *extra], args.checkpoint)
        _test(out, passthrough, model, checkpoint, save_predictions=i == 0)
    first = "fit" if models[0] is None else f"fit-{models[0]}"
    report = analyze(
        out / "results.csv",
        out / "report",
        metric=args.metric,
        margins=args.margin,
        reference=args.reference,
        predictions_dir=out / "predictions",
        data_root=_data_root(out / first / "config.yaml"),
    )
    minutes = (time.time() - started) / 60
    print(f"\nStudy finished in {minutes:.1f} min: {out}\nReport: {report}")
    return 0
