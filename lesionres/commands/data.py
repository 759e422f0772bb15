"""``synth`` (write the synthetic datasets) and ``check`` (validate a dataset before training)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from lesionres.commands.signature import Flag
from lesionres.config_files import DEFAULT_CONFIG, read_section
from lesionres.data.masks import DEFAULT_ATOL_MM
from lesionres.errors import LesionresError, print_error

__all__ = ["check", "check_main", "synth", "synth_main"]

# synth writes the dataset of the default run, which then uses it as it is: one set of
# defaults, default.yaml's data section
_DEFAULT_DATA = read_section(DEFAULT_CONFIG)


def synth(
    out: Annotated[Path, Flag(("--out",), metavar="DIR")],
    n: int = int(_DEFAULT_DATA["synthetic_subjects"]),
    n_isles: Annotated[int, Flag(("--n-isles",))] = int(_DEFAULT_DATA["synthetic_isles_subjects"]),
    seed: int = int(_DEFAULT_DATA["seed"]),
    spacing: Annotated[float, Flag(("--spacing",), metavar="MM")] = float(
        _DEFAULT_DATA["synthetic_spacing"]
    ),
    force: bool = False,
    quiet: bool = False,
) -> int:
    """Write a deterministic synthetic stroke dataset built from the MNI152 template.

    Nothing is downloaded: DIR/ATLAS_2 in the ATLAS v2.0 layout (T1-like), DIR/ISLES22 in the
    ISLES 2022 layout (DWI-like and FLAIR-like images on low-resolution oblique grids) and
    DIR/synthetic.json (every subject's parameters). Subjects vary in anatomy (deformation, head
    size and pose, atrophy, skull or not), contrast, bias and noise, so a model learns what a
    lesion looks like; `python -m lesionres.data.synthetic_figure PNG` draws some. The defaults
    are those of the default run (default.yaml), so that `fit` uses the dataset as it is.

    Args:
        out: Dataset folder to create.
        n: ATLAS-like subjects.
        n_isles: ISLES-like subjects; 0 for none.
        seed: Dataset seed (the default run's --data.seed).
        spacing: Voxel size of the ATLAS-like set in mm (1 = the real ATLAS grid).
        force: Replace the dataset in a non-empty DIR.
        quiet: No progress bars.

    Raises:
        LesionresError: DIR is not empty (without ``--force``), or a refused request.
    """
    from lesionres.data.synthetic import MANIFEST, _non_empty, generate_synthetic

    out = out.expanduser()
    if _non_empty(out) and not force:
        raise LesionresError(f"{out}: not empty; pass --force to replace the dataset in it")
    generate_synthetic(
        out, n=n, n_isles=n_isles, seed=seed, spacing=spacing, progress=not quiet, overwrite=force
    )
    print(f"wrote {n} ATLAS-like subjects (T1-like) at {spacing:g} mm to {out / 'ATLAS_2'}")
    if n_isles:
        print(
            f"wrote {n_isles} ISLES-like subjects (DWI-like and FLAIR-like images on 2 mm and "
            f"1x1x5 mm oblique grids) to {out / 'ISLES22'}"
        )
    print(f"manifest: {out / MANIFEST}")
    print(f"train on it: python -m lesionres fit --data.dataset synthetic --data.root {out}")
    return 0


def check(
    root: Path,
    dataset: Literal["auto", "atlas", "isles22", "folder", "synthetic"] = "auto",
    modality: Literal["dwi", "adc", "flair"] = "dwi",
    atol: float = DEFAULT_ATOL_MM,
    binarize: Literal["strict", "nonzero", "half"] = "strict",
    split: Path | None = None,
    workers: int = 2,
    verbose: Annotated[bool, Flag(("-v", "--verbose"))] = False,
) -> int:
    """Read every image and mask completely and report each problem by file.

    Images without masks and masks without images, unreadable folders, truncated or corrupt
    files, NaN/Inf, constant images, non-binary or empty masks, image/mask shape or affine
    mismatch, duplicate ids, leaks between splits: every subject is read and the whole table
    printed, not only the first problem. Exit status 0 when no error (warnings allowed), 1 when
    any error, 2 when no subject is found at all or the options are wrong.

    Args:
        root: Dataset folder (or a CSV of image,mask).
        dataset: Layout (auto: guessed from the file names; synthetic reads like atlas).
        modality: ISLES 2022 image.
        atol: Tolerance on the image/mask affine difference in mm.
        binarize: Non-binary masks: strict = error, nonzero = > 0 is lesion, half = >= half the
            maximum (values within 1e-3 of 0/1 are always rounded).
        split: Split JSON (train/val/test id lists).
        workers: Threads reading files.
        verbose: Also list infos (e.g. files not used).

    Raises:
        LesionresError: ROOT does not exist, no subject found, or an unreadable split.
    """
    from lesionres.data.dataset_check import check_records, dataset_findings, load_split
    from lesionres.data.findings import count
    from lesionres.data.layouts import discover
    from lesionres.data.validation import check_table, detect_kind

    if not root.exists():
        raise LesionresError(f"{root}: does not exist")
    kind = detect_kind(root) if dataset == "auto" else dataset
    found = discover(kind, root, modality=modality)
    records = found.records
    splits = load_split(split) if split is not None else None
    checks = check_records(
        records, splits, atol_mm=atol, binarize=binarize, split_path=split, workers=workers
    )
    extra = found.findings + dataset_findings(records, splits, split)

    detected = " (detected)" if dataset == "auto" else ""
    n_subjects = len({r.subject_id for r in records})
    rows = f" ({len(records)} rows: an id found twice)" if n_subjects != len(records) else ""
    print(
        f"{count(n_subjects, 'subject')}{rows} in {root}: dataset {kind}{detected}, "
        f"binarize {binarize}, affine tolerance {atol:g} mm"
    )
    print()
    print("\n".join(check_table(checks)))
    print()
    n_error = sum(c.status == "error" for c in checks)
    n_warning = sum(c.status == "warning" for c in checks)
    n_ok = len(checks) - n_error - n_warning
    print(f"{n_ok} ok, {n_warning} with warnings, {n_error} with errors")
    findings = [f for c in checks for f in c.findings] + extra
    levels: list[tuple[str, str]] = [("error", "Errors"), ("warning", "Warnings")]
    if verbose:
        levels.append(("info", "Notes"))
    for level, title in levels:
        listed = list(dict.fromkeys(f for f in findings if f.level == level))  # once each
        if listed:
            print(f"\n{title} ({len(listed)}):")
            for finding in listed:
                print(f"  {finding}")
    has_error = n_error > 0 or any(f.level == "error" for f in extra)
    if has_error:
        print("\nFix the errors above before training (fit/test stop on them).")
    return 1 if has_error else 0


def synth_main(argv: Sequence[str] | None = None) -> int:
    """``lesionres synth`` on ``argv``: its exit status (2 after a printed error)."""
    return _status("synth", argv)


def check_main(argv: Sequence[str] | None = None) -> int:
    """``lesionres check`` on ``argv``: 0, 1 (errors found), 2 (printed error)."""
    return _status("check", argv)


def _status(name: str, argv: Sequence[str] | None) -> int:
    from lesionres.commands import run_command

    try:
        return run_command(name, argv)
    except LesionresError as error:
        return print_error(error)
