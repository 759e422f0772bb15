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
per model. Predictions are saved for the first model only.

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

RESOLUTION_PRESETS = ("none", "nnunet", "synthseg")


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


def _fit_and_test(out: Path, passthrough: list[str], model: str | None, save_predictions: bool) -> Path:
    """Train (or reuse) one model and append its test rows to ``out/results.csv``; its fit folder."""
    from lesionres.cli import main

    fit_name, test_name = ("fit", "test") if model is None else (f"fit-{model}", f"test-{model}")
    fit_dir = out / fit_name
    checkpoints = fit_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    model_args = [] if model is None else ["--data.resolution_augmentation", model]
    if model == "none":  # the baseline: no augmentation, whatever options the config sets
        model_args += ["--data.resolution_options", "null"]
    if (fit_dir / "done").exists():
        print(f"Reusing the finished fit in {fit_dir}")
    else:
        resume = ["--ckpt_path", str(last)] if last.exists() else []
        main(["fit", *passthrough, *model_args, *_run_overrides(out, fit_name), *resume])
        (fit_dir / "done").touch()
    best = _best_checkpoint(checkpoints) or (last if last.exists() else None)
    if best is None:
        raise LesionresError(f"{checkpoints}: fit wrote no checkpoint")
    print(f"\nTesting {best}")
    main(
        [
            "test",
            *passthrough,
            *_run_overrides(out, test_name),
            "--ckpt_path", str(best),
            "--results.path", str(out / "results.csv"),
            "--results.save_predictions", str(save_predictions).lower(),
            *(["--results.model", model] if model is not None else []),
        ]
    )  # fmt: skip
    return fit_dir


def study_main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``study``."""
    from lesionres.analysis import analyze

    parser = argparse.ArgumentParser(
        prog="lesionres study",
        description="fit, then test under every resolution condition, then analyze",
        epilog="Other options go to both fit and test, e.g. --config paper.yaml --data.root DIR.",
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/study-<time>)")
    parser.add_argument("--metric", default="dice", help="metric compared across conditions")
    parser.add_argument(
        "--models",
        default=None,
        help="train and compare one model per resolution-augmentation preset, e.g. none,synthseg "
        f"(choices: {', '.join(RESOLUTION_PRESETS)})",
    )
    args, passthrough = parser.parse_known_args(argv)
    models: list[str | None] = [None]
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in models if m not in RESOLUTION_PRESETS]
        if unknown or len(set(models)) != len(models):
            raise LesionresError(
                f"--models: expected distinct names from {', '.join(RESOLUTION_PRESETS)}, got {args.models!r}"
            )
    out = args.out or Path("runs") / time.strftime("study-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    fit_dirs = [_fit_and_test(out, passthrough, m, save_predictions=i == 0) for i, m in enumerate(models)]
    report = analyze(
        out / "results.csv",
        out / "report",
        metric=args.metric,
        predictions_dir=out / "predictions",
        data_root=_data_root(fit_dirs[0] / "config.yaml"),
    )
    minutes = (time.time() - started) / 60
    print(f"\nStudy finished in {minutes:.1f} min: {out}\nReport: {report}")
    return 0
