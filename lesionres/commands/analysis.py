"""``analyze`` (statistics, tables, figures and report from a results table) and ``study`` (fit,
test and analyze in one run folder). Torch-free to import, like :mod:`lesionres.analysis`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from lesionres.commands.signature import Flag
from lesionres.errors import LesionresError

__all__ = ["analyze", "analyze_main", "study", "study_main"]

EPILOGS = {
    "study": "Other options go to both fit and test, e.g. --config paper.yaml --data.root DIR.",
}
_MARGIN = Flag(("--margin",), "extend", "METRIC=VALUE")


def analyze(
    results: str,
    out: str = "report",
    metric: str = "dice",
    correction: Literal["holm", "fdr_bh"] = "holm",
    alpha: float = 0.05,
    predictions: str | None = None,
    data_root: Annotated[str | None, Flag(("--data-root",))] = None,
    seed: int = 0,
    n_boot: Annotated[int, Flag(("--n-boot",))] = 2000,
    zero_method: Annotated[
        Literal["wilcox", "pratt", "zsplit"], Flag(("--zero-method",))
    ] = "wilcox",
    partial: Literal["error", "intersect"] = "error",
    match: Literal["strict", "subject", "dataset"] = "strict",
    source_spacing: Annotated[str | None, Flag(("--source-spacing",))] = None,
    margin: Annotated[list[str] | None, _MARGIN] = None,
    reference: str | None = None,
    pairs: Literal["auto", "all", "reference"] = "auto",
    no_figures: Annotated[bool, Flag(("--no-figures",))] = False,
) -> int:
    """Statistics, tables, figures and a Markdown report from a per-scan results table.

    Args:
        results: results.csv: one row per scan x condition (x model).
        out: Output folder.
        metric: Primary metric column.
        correction: Multiple-comparison correction.
        alpha: Significance level.
        predictions: Folder of saved NIfTI predictions (a sub-folder per condition).
        data_root: Dataset folder with ground truth and images, for the overlays.
        seed: Bootstrap seed.
        n_boot: Bootstrap resamples.
        zero_method: Zero differences in the signed-rank test.
        partial: Conditions sharing only some scans: refuse (error) or pair the shared scans.
        match: Subject ids under two dataset labels: refuse (strict), pair them as the same
            scans (subject), or keep them apart (dataset).
        source_spacing: Spacing of the original images, e.g. 1 or 2x2x2, for the resolution
            curve (default: the original rows' spacing_mm, else 1 mm).
        margin: Non-inferiority margins in the metric's units, e.g. dice=0.02 hd95_mm=2
            (default: dice=0.02; 'none': no margin analysis).
        reference: Condition the others must be as good as (default: original).
        pairs: Conditions compared: every pair (all), or each against --reference (reference);
            auto: every pair up to 6 conditions, else the reference.
        no_figures: Tables and report only.

    Raises:
        LesionresError: Bad input (the file or option named).
    """
    from lesionres.analysis import analyze as run_analysis

    if n_boot < 0:
        raise LesionresError(f"--n-boot: expected a non-negative integer, got {n_boot}")
    started = time.perf_counter()
    report = run_analysis(
        results, out, metric=metric, correction=correction, alpha=alpha,
        predictions_dir=predictions, n_boot=n_boot, seed=seed, zero_method=zero_method,
        partial=partial, match=match, make_figures=not no_figures, data_root=data_root,
        source_spacing=source_spacing, margins=margin, reference=reference, pairs=pairs,
    )  # fmt: skip
    print(f"wrote {report} ({time.perf_counter() - started:.1f} s)")
    return 0


def study(
    out: Path | None = None,
    metric: str = "dice",
    margin: Annotated[list[str] | None, _MARGIN] = None,
    reference: str | None = None,
    models: str | None = None,
    finetune: Annotated[int | None, Flag(("--finetune",), metavar="EPOCHS")] = None,
    finetune_lr: Annotated[float | None, Flag(("--finetune-lr",))] = None,
    checkpoint: Literal["best", "last"] = "best",
    passthrough: Sequence[str] = (),
) -> int:
    """Fit, then test under every resolution condition, then analyze, in one run folder.

    A rerun with the same --out resumes: a finished fit is reused and test skips the rows
    already in results.csv.

    Args:
        out: Run folder (default runs/study-<time>).
        metric: Metric compared across conditions.
        margin: Non-inferiority margins for the report, e.g. dice=0.02 hd95_mm=2 (default:
            dice=0.02; 'none': no margin analysis).
        reference: Condition the others must be as good as (original).
        models: Train and compare one model per resolution-augmentation preset, e.g.
            none,sweep (choices: none, nnunet, synthseg, sweep).
        finetune: With --models: train one shared model first (no resolution augmentation),
            then fine-tune a copy of it for EPOCHS epochs per model, so that the models differ
            only in their augmentation.
        finetune_lr: Learning rate of the fine-tuning (default: --model.lr).
        checkpoint: Checkpoint each model is tested with: best validation Dice (at the original
            resolution) or the last epoch's (fairer between models trained on different inputs).
        passthrough: Every other option, for both fit and test.

    Raises:
        LesionresError: A malformed margin, unknown models or a bad --finetune, before any
            training.
    """
    from lesionres.analysis.noninferiority import parse_margins
    from lesionres.study import RESOLUTION_PRESETS, run_study

    parse_margins(margin)  # a malformed margin stops here, not after hours of training
    chosen: list[str | None] = [None]
    if models:
        chosen = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in RESOLUTION_PRESETS]
        if unknown or len(set(chosen)) != len(chosen):
            raise LesionresError(
                f"--models: expected distinct names from {', '.join(RESOLUTION_PRESETS)}, "
                f"got {models!r}"
            )
    if finetune is not None and (not models or finetune < 1):
        raise LesionresError("--finetune needs --models and a positive number of epochs")
    out = out or Path("runs") / time.strftime("study-%Y%m%d-%H%M%S")
    started = time.time()
    report = run_study(
        out, list(passthrough), chosen, metric, margin, reference, finetune, finetune_lr,
        checkpoint,
    )  # fmt: skip
    minutes = (time.time() - started) / 60
    print(f"\nStudy finished in {minutes:.1f} min: {out}\nReport: {report}")
    return 0


def analyze_main(argv: Sequence[str] | None = None) -> int:
    """``lesionres analyze`` on ``argv``: 0; raises :class:`LesionresError` on bad input."""
    from lesionres.commands import run_command

    return run_command("analyze", argv)


def study_main(argv: Sequence[str] | None = None) -> int:
    """``lesionres study`` on ``argv``: 0; raises :class:`LesionresError` on bad input."""
    from lesionres.commands import run_command

    return run_command("study", argv)
