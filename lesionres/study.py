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

from pathlib import Path

from lesionres.errors import LesionresError

__all__ = ["RESOLUTION_PRESETS", "run_overrides", "run_study"]

RESOLUTION_PRESETS = ("none", "nnunet", "synthseg", "sweep")


def run_overrides(out: Path, version: str) -> list[str]:
    """Options that put a Lightning run's logs, config and checkpoints in ``out/version``."""
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
    from lesionres.lightning_cli import run_lightning

    checkpoints = out / name / "checkpoints"
    last = checkpoints / "last.ckpt"
    if (out / name / "done").exists():
        print(f"Reusing the finished fit in {out / name}")
    else:
        resume = ["--ckpt_path", str(last)] if last.exists() else []
        run_lightning(["fit", *args, *run_overrides(out, name), *resume])
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
    from lesionres.lightning_cli import run_lightning

    print(f"\nTesting {checkpoint}")
    run_lightning(
        [
            "test",
            *passthrough,
            *run_overrides(out, "test" if model is None else f"test-{model}"),
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


def run_study(
    out: Path,
    passthrough: list[str],
    models: list[str | None],
    metric: str = "dice",
    margins: list[str] | None = None,
    reference: str | None = None,
    finetune: int | None = None,
    finetune_lr: float | None = None,
    checkpoint: str = "best",
) -> Path:
    """Fit each model, test it into ``out/results.csv`` and analyze the table; the report.

    Args:
        out: The run folder (created).
        passthrough: Options for both ``fit`` and ``test``.
        models: Resolution-augmentation presets, one model each; ``[None]``: one model as the
            options define it.
        metric: Metric compared across conditions.
        margins: Non-inferiority margins for the report (``analyze --margin``).
        reference: The condition the others must be as good as.
        finetune: Train one shared model first, then fine-tune a copy of it for this many
            epochs per model.
        finetune_lr: Learning rate of the fine-tuning (default: the model's).
        checkpoint: ``best`` or ``last``: the checkpoint each model is tested with.
    """
    from lesionres.analysis import analyze

    out.mkdir(parents=True, exist_ok=True)
    start: list[str] = []
    if finetune:
        shared = _fit(out, "fit-shared", [*passthrough, *_augmentation_args("none")])
        start = ["--model.init_weights", str(shared), "--trainer.max_epochs", str(finetune)]
        start += ["--model.lr", str(finetune_lr)] if finetune_lr else []
    for i, model in enumerate(models):
        extra = [] if model is None else [*_augmentation_args(model), *start]
        name = "fit" if model is None else f"fit-{model}"
        chosen = _fit(out, name, [*passthrough, *extra], checkpoint)
        _test(out, passthrough, model, chosen, save_predictions=i == 0)
    first = "fit" if models[0] is None else f"fit-{models[0]}"
    return analyze(
        out / "results.csv",
        out / "report",
        metric=metric,
        margins=margins,
        reference=reference,
        predictions_dir=out / "predictions",
        data_root=_data_root(out / first / "config.yaml"),
    )
