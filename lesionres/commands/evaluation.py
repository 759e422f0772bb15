"""``degrade``, ``score`` and ``benchmark``: other models on the resolution conditions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from lesionres.commands.signature import Flag
from lesionres.config_files import read_section
from lesionres.errors import LesionresError

__all__ = ["DatasetOptions", "benchmark", "degrade", "score"]

Binarize = Literal["strict", "nonzero", "half"]
BENCHMARK_EXAMPLE = (
    "Example: lesionres benchmark /data/ATLAS_2 --dataset atlas --predictor "
    "nnunet='nnUNetv2_predict -i {input} -o {output} -d 501 -c 3d_fullres' --layout "
    "nnunet=nnunet --ckpt_path best.ckpt --split_file run/split.json --out bench/"
)
EPILOGS = {"benchmark": BENCHMARK_EXAMPLE}


@dataclass
class DatasetOptions:
    """The options ``degrade`` and ``benchmark`` share: the dataset, its conditions, the grid.

    Args:
        root: Dataset folder (or CSV for --dataset folder).
        out: Output folder.
        dataset: Layout of ROOT (default: the config's data.dataset, else folder).
        config: A lesionres YAML config: its data.conditions / condition_preset.
        conditions: YAML list, as test's --data.conditions, e.g.
            '[{method: acquisition, spacing: [1, 1, 5]}]'.
        condition_preset: Named condition set (default: the config's, else study).
        grid: native: the scan's own grid, as test uses it; acquired: the simulated scan on its
            coarse grid.
        modality: ISLES 2022 image modality (default: the config's, else dwi).
    """

    root: Path
    out: Annotated[Path, Flag(("--out",))]
    dataset: Literal["atlas", "isles22", "folder"] | None = None
    config: Path | None = None
    conditions: str | None = None
    condition_preset: Literal["study", "sweep", "none"] | None = None
    grid: Literal["native", "acquired"] = "native"
    modality: Literal["dwi", "adc", "flair"] | None = None


def degrade(
    data: DatasetOptions,
    layout: Literal["folder", "nnunet"] = "folder",
    binarize: Binarize | None = None,
) -> int:
    """Every scan under every test condition, as NIfTI (the images test feeds the model).

    Writes OUT/<condition>/images/<subject_id>.nii.gz (--layout folder) or
    OUT/<condition>/imagesTs/<subject_id>_0000.nii.gz (--layout nnunet) and OUT/manifest.csv;
    a rerun skips the files already written.

    Args:
        data: The dataset, its conditions and the output.
        layout: Output naming: folder (images/<id>.nii.gz) or nnunet (imagesTs/<id>_0000.nii.gz).
        binarize: How mask values are read (as test's --data.binarize).
    """
    from lesionres.degrade import choose_conditions, degrade_dataset, find_dataset

    config = read_section(data.config)
    conditions = choose_conditions(data, config)
    _, _, records = find_dataset(data, config, binarize or config.get("binarize") or "strict")
    degrade_dataset(records, conditions, data.out, data.grid, layout)
    print(
        f"Wrote {len(records)} scans x {len(conditions)} conditions to {data.out} "
        f"(manifest: {data.out / 'manifest.csv'})"
    )
    return 0


def score(
    pred: Path,
    gt: Path,
    dataset: Literal["atlas", "isles22", "folder"] | None = None,
    modality: str = "dwi",
    out: Path = Path("results.csv"),
    condition: str = "external",
    model: str = "",
    missing: Literal["error", "empty"] = "error",
    threshold: float = 0.5,
    connectivity: Literal[6, 18, 26] = 26,
    empty: Literal["one", "nan"] = "one",
    hd95: Literal["pooled", "max"] = "pooled",
    binarize: Binarize = "strict",
    atol: float = 1e-4,
) -> int:
    """Score any tool's prediction masks exactly like test scores lesionres's own.

    Predictions are matched to ground-truth masks by subject id, scored on the ground truth's
    grid and appended to the results table test writes. Every ground truth gets a row: a scan
    the tool did not predict is an error row or an empty mask (--missing), never left out.

    Args:
        pred: Prediction mask file or folder.
        gt: Ground-truth mask file or folder, or the dataset root (--dataset).
        dataset: GT is a dataset root of this layout: masks, subject ids and the dataset label
            come from it as in `test`, so `analyze` pairs these rows with test's (recommended).
        modality: ISLES modality / a folder's declared modality.
        out: Results table (appended, resumable).
        condition: Condition label for these rows.
        model: Model label (e.g. nnunet), compared per condition by analyze.
        missing: A ground truth without prediction: an error row or scored as an empty mask
            (challenge convention, Dice 0).
        threshold: Binarise predictions at this value.
        connectivity: Voxel connectivity of lesion components (lesion-wise F1, lesion count).
        empty: Both masks empty: Dice 1 (one, challenge code) or NaN.
        hd95: HD95 aggregation: pooled (medpy) or max of the directed ones (MONAI).
        binarize: How ground-truth mask values become lesion (as --data.binarize).
        atol: Affine tolerance in mm.
    """
    from lesionres.scoring import (
        NO_PREDICTION,
        ScoreSettings,
        _ground_truths,
        match_masks,
        score_condition,
    )

    truths = _ground_truths(gt, dataset, modality, binarize)
    matching = match_masks(pred, truths["truths"])
    if not matching.predictions:
        example = next(iter(matching.truths), "none")
        raise LesionresError(
            f"{pred}: no prediction matches a ground truth of {gt} by subject id "
            f"(e.g. ground truth {example})"
        )
    settings = ScoreSettings(threshold, connectivity, empty, hd95, binarize, atol, missing)
    labels = {**truths["labels"], "method": "external"}
    outcome = score_condition(
        out, matching, dict.fromkeys(matching.truths, labels), condition, model, settings
    )
    for error in outcome.errors.values():
        if error != NO_PREDICTION and error not in matching.problems.values():
            print(f"error: {error}")
    print(
        f"Scored {len(matching.truths)} ground-truth scans into {out} ({outcome.written} new "
        f"rows, {len(outcome.errors)} of them failed)"
    )
    if matching.missing:
        how = "error rows" if missing == "error" else "scored as empty masks (Dice 0)"
        shown = ", ".join(matching.missing[:5]) + (" …" if len(matching.missing) > 5 else "")
        print(
            f"warning: {len(matching.missing)} ground truth(s) have no prediction, {how}: {shown}"
        )
    for subject, problem in matching.problems.items():
        print(f"warning: {subject}: {problem}")
    if matching.unmatched:
        print(f"warning: {len(matching.unmatched)} prediction(s) match no ground truth:")
        for file in matching.unmatched:
            print(f"  {file}")
    if not dataset:
        print(
            "note: rows have no dataset label; to pair them with rows of `test`, score with "
            "--dataset atlas|isles22|folder and the dataset root as GT"
        )
    return 0


def benchmark(
    data: DatasetOptions,
    predictor: Annotated[tuple[str, ...], Flag(("--predictor",), "append", "NAME=COMMAND")] = (),
    layout: Annotated[tuple[str, ...], Flag(("--layout",), "append", "[NAME=]LAYOUT")] = (),
    ckpt_path: Path | None = None,
    register: Literal["none", "mni"] = "none",
    ckpt_name: str = "lesionres",
    split_file: Path | None = None,
    binarize: Binarize = "strict",
    gt_binarize: Binarize | None = None,
    missing: Literal["error", "empty"] = "error",
    connectivity: Literal[6, 18, 26] = 26,
    empty: Literal["one", "nan"] = "one",
    hd95: Literal["pooled", "max"] = "pooled",
    no_figures: Annotated[bool, Flag(("--no-figures",))] = False,
    no_progress: Annotated[bool, Flag(("--no-progress",))] = False,
) -> int:
    """Any segmentation model under the resolution sweep, scored and compared in one table.

    Each predictor's command runs once per condition on degrade's images of that condition; its
    masks are scored by score's code into OUT/results.csv (the predictor's name in the model
    column), --ckpt_path adds lesionres's own model through test, and analyze writes
    OUT/report/. A rerun resumes. Exit status 1 when the analysis failed (the table stays).

    Args:
        data: The dataset, its conditions and the output.
        predictor: A model run from the command line; {input}: the condition's image folder,
            {output}: an empty folder for its masks (repeat per model).
        layout: Input naming per predictor: folder (images/<id>.nii.gz, default) or nnunet
            (imagesTs/<id>_0000.nii.gz); a bare value applies to all.
        ckpt_path: Also test lesionres's own model (a checkpoint of fit).
        register: --ckpt_path's model: register scans in scanner space (isles22, folder) to
            MNI152 2009a first (test's --data.register).
        ckpt_name: Model label of --ckpt_path's rows.
        split_file: Evaluate only the 'test' subjects of this split (e.g. a run's split.json);
            default: every scan under ROOT.
        binarize: How predicted masks are read: strict (0/1 only), nonzero (label maps: > 0) or
            half (probability maps: >= half the maximum).
        gt_binarize: How ground-truth mask values are read, for every model (default: the
            config's data.binarize, else strict).
        missing: A scan without predicted mask: error row or empty mask.
        connectivity: Voxel connectivity of lesion components (lesion-wise F1, lesion count).
        empty: Both masks empty: Dice 1 (one, challenge code) or NaN.
        hd95: HD95 aggregation: pooled (medpy) or max of the directed ones (MONAI).
        no_figures: Report without figures.
        no_progress: No progress bars.
    """
    from tqdm import tqdm

    from lesionres.benchmark import (
        BenchmarkRun,
        parse_predictors,
        report,
        run_condition,
        test_own_model,
        test_subjects,
    )
    from lesionres.data.layouts import describe_scans
    from lesionres.degrade import choose_conditions, find_dataset
    from lesionres.scoring import ScoreSettings

    predictors = parse_predictors(list(predictor), list(layout), ckpt_name if ckpt_path else None)
    if not predictors and ckpt_path is None:
        raise LesionresError(
            "benchmark: nothing to run; give --predictor NAME=COMMAND and/or --ckpt_path CHECKPOINT"
        )
    if ckpt_path is not None and not ckpt_path.is_file():
        raise LesionresError(f"{ckpt_path}: checkpoint file not found")
    config = read_section(data.config)
    conditions = choose_conditions(data, config)
    truth_binarize = gt_binarize or config.get("binarize") or "strict"
    kind, root, records = find_dataset(data, config, truth_binarize, require_masks=True)
    records = test_subjects(records, split_file)
    if ckpt_path is not None and split_file is None:
        print(
            "note: every scan under ROOT is evaluated, also any lesionres's model was trained "
            "on; --split_file RUN/split.json evaluates its test scans only"
        )
    modality = data.modality or config.get("modality") or "dwi"
    declared = {"isles22": modality, "folder": config.get("folder_modality") or ""}.get(kind, "")
    settings = ScoreSettings(
        connectivity=connectivity, empty=empty, hd95=hd95, binarize=truth_binarize,
        missing=missing, prediction_binarize=binarize,
    )  # fmt: skip
    models = len(predictors) + (ckpt_path is not None)
    print(f"Benchmark: {len(records)} scans x {len(conditions)} conditions, {models} model(s) "
          f"-> {data.out}")  # fmt: skip
    steps = len(predictors) * len(conditions) + (ckpt_path is not None)
    with tqdm(total=steps, desc="benchmark", unit="run", disable=no_progress) as bar:
        scans = describe_scans(kind, declared)
        run = BenchmarkRun(data.out, records, conditions, data.grid, settings, scans, bar)
        manifests: dict[str, dict] = {}
        for each in predictors:
            if each.layout not in manifests:
                manifests[each.layout] = run.images(each.layout)
            for condition in conditions:
                bar.set_postfix_str(f"{each.name}: {condition.name}")
                run_condition(run, each, condition.name, manifests[each.layout][condition.name])
                bar.update()
        if ckpt_path is not None:
            bar.set_postfix_str(f"{ckpt_name}: test")
            test_own_model(run, kind, root, ckpt_path, ckpt_name, data.config, register,
                           data.modality)  # fmt: skip
            bar.update()
    return report(run, no_figures)
