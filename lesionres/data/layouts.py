"""Find image/mask pairs on disk in the ATLAS v2.0, ISLES 2022 and plain-folder layouts.

Nothing is read here except file and folder names, so discovery is instant even on 655
subjects. What looks wrong in the folders does not stop discovery at the first sight: it is
reported, all of it, as :class:`~lesionres.data.findings.Finding` objects, either on the
subject concerned (:attr:`SubjectRecord.problems`: an image without its mask, a mask without
its image, a CSV row naming a missing file) or on the dataset (:attr:`Discovery.findings`: an
unreadable folder, a NIfTI file that matches no expected name). :func:`discover` returns them
(``check`` prints them beside what it reads in the files); :func:`find_subjects` and the
``find_*`` functions raise with every error listed.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lesionres.data.findings import Finding, check_command, count, error_report
from lesionres.data.io import IMAGE_SUFFIXES
from lesionres.errors import LesionresError
from lesionres.files import strip_image_suffix

__all__ = [
    "DatasetKind",
    "Discovery",
    "IslesModality",
    "MNI_DATASETS",
    "SubjectRecord",
    "discover",
    "find_atlas",
    "find_folder",
    "find_isles",
    "find_subjects",
]

DatasetKind = Literal["atlas", "isles22", "folder", "synthetic"]
IslesModality = Literal["dwi", "adc", "flair"]
MNI_DATASETS = ("atlas", "synthetic")  # kinds whose scans lie in MNI space (registered already)

ATLAS_IMAGE_SUFFIX = "_space-MNI152NLin2009aSym_T1w.nii.gz"
ATLAS_MASK_SUFFIX = "_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"
# every image file name read: NIfTI and the ITK formats (.mha, .mhd, .nrrd) of io.IMAGE_SUFFIXES
NIFTI_SUFFIXES = IMAGE_SUFFIXES
ISLES_IMAGE = re.compile(r"^(sub-[^_]+)_(ses-[^_]+)_(dwi|adc|flair)\.nii(\.gz)?$", re.I)
ISLES_MASK = re.compile(r"^(sub-[^_]+)_(.*_)?msk\.nii(\.gz)?$")


@dataclass(frozen=True)
class SubjectRecord:
    """Where one scan and its lesion mask live, plus the metadata carried into results.

    Attributes:
        subject_id: Unique id within the dataset (BIDS ``sub-`` label or file stem).
        image: Path of the image volume (for a mask found without its image: where the image
            was expected; ``problems`` then says so).
        mask: Path of the lesion mask, or ``None`` when there is none (prediction only).
        dataset: Dataset name, e.g. ``"atlas"`` or ``"isles22"``.
        cohort: Acquisition site / cohort (ATLAS ``R0xx``; ``""`` when unknown).
        extra: Further named paths (e.g. ISLES modalities on other grids).
        binarize: How the mask's values become lesion: ``strict`` (only 0/1), ``nonzero``
            (> 0) or ``half`` (>= half the maximum); see
            :func:`lesionres.data.masks.read_mask`.
        modality: What the image is (``T1w``, ``dwi``, ``adc``, ``flair``, a folder's declared
            modality, ``""`` when unknown), recorded with every result.
        space: Where the image lives: ``MNI152NLin2009aSym`` (ATLAS), ``scanner`` (ISLES),
            ``""`` when unknown.
        problems: What the finder saw wrong with this subject's files (an error makes the
            subject unusable); :func:`lesionres.data.subject_check.check_subject` reports them
            first.
    """

    subject_id: str
    image: Path
    mask: Path | None
    dataset: str
    cohort: str = ""
    extra: dict[str, Path] = field(default_factory=dict, compare=False)
    binarize: str = "strict"
    modality: str = ""
    space: str = ""
    problems: tuple[Finding, ...] = field(default=(), compare=False)


@dataclass
class Discovery:
    """Every subject a finder saw, and what it saw wrong in the folders.

    Attributes:
        root: The dataset folder (or CSV) searched.
        records: One record per subject found (an image, a mask, or both), sorted by path;
            a record whose ``problems`` hold an error cannot be used as it is.
        findings: Findings about no single subject: unreadable folders (errors), NIfTI files
            that match no expected name (infos).
        command: The ``python -m lesionres check`` command for this dataset.
    """

    root: Path
    records: list[SubjectRecord]
    findings: list[Finding]
    command: str

    @property
    def errors(self) -> list[Finding]:
        """Every error: the subjects' problems, in record order, then the dataset's."""
        problems = [f for r in self.records for f in r.problems] + self.findings
        return [f for f in problems if f.level == "error"]

    def usable(self) -> list[SubjectRecord]:
        """The records, when no error was found.

        Raises:
            LesionresError: every error, one line each (the first ten, then a count), and the
                ``check`` command that prints the full table.
        """
        errors = self.errors
        if errors:
            header = f"{self.root}: {count(len(errors), 'error')} in the dataset's files"
            raise LesionresError(error_report(errors, header, self.command))
        return list(self.records)


def _require_dir(root: str | Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LesionresError(f"{root}: not a directory (expected {what})")
    return root


def _unreadable(error: OSError) -> Finding:
    reason = error.strerror or type(error).__name__
    return Finding(
        "error",
        Path(error.filename or "?"),
        f"unreadable folder ({reason}): the subjects in it are missing",
    )


def _walk(root: Path, findings: list[Finding]) -> list[Path]:
    """Every file under ``root`` (hidden ones skipped), sorted; unreadable folders are errors.

    ``Path.rglob`` skips a folder it cannot read without a word: its subjects would vanish.
    """
    files = []
    # followlinks as rglob did: datasets are often linked in
    walk = os.walk(
        root, onerror=lambda error: findings.append(_unreadable(error)), followlinks=True
    )
    for folder, folders, names in walk:
        folders[:] = sorted(d for d in folders if not d.startswith("."))
        files.extend(Path(folder) / name for name in names if not name.startswith("."))
    return sorted(files)


def _list_dir(folder: Path, findings: list[Finding]) -> list[Path]:
    """The files of one folder (hidden ones skipped), sorted; unreadable: an error finding."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    except OSError as error:
        findings.append(_unreadable(error))
        return []


def _not_used(files: Sequence[Path], layout: str) -> list[Finding]:
    """Infos for files that match no name the layout expects (listed by ``check -v``)."""
    return [Finding("info", p, f"matches no {layout} name: not used") for p in files]


def _nothing_found(root: Path, expected: str, findings: Sequence[Finding]) -> LesionresError:
    """No subject at all: one line, plus the errors that may explain it (unreadable folders)."""
    errors = [f"  {f}" for f in findings if f.level == "error"]
    return LesionresError("\n".join([f"{root}: {expected}", *errors]))


def _pair(
    images: Sequence[tuple[str, Path]],
    masks: dict[str, Path],
    record: Callable[[str, Path, Path | None], SubjectRecord],
    no_mask: Callable[[str, Path], str],
    no_image: Callable[[str, Path], tuple[Path, str]],
    require_masks: bool,
) -> list[SubjectRecord]:
    """Match images to masks by key; a missing partner is a problem of that subject.

    Args:
        images: ``(key, image)`` in order (a key twice: two records, a duplicate id).
        masks: ``key -> mask``.
        record: Builds the record of ``(key, image, mask)``.
        no_mask: The problem text for an image without its mask.
        no_image: Where the image of a mask was expected, and the problem text.
        require_masks: ``False``: an image without a mask is no problem (prediction only).
    """
    records = []
    for key, image in images:
        mask = masks.get(key)
        problems = ()
        if mask is None and require_masks:
            problems = (Finding("error", image, no_mask(key, image)),)
        records.append(dataclasses.replace(record(key, image, mask), problems=problems))
    paired = {key for key, _ in images}
    for key, mask in masks.items():
        if key not in paired:
            image, text = no_image(key, mask)
            problem = Finding("error", mask, text)
            records.append(dataclasses.replace(record(key, image, mask), problems=(problem,)))
    return sorted(records, key=lambda r: Path(r.image))


# --------------------------------------------------------------------------- ATLAS v2.0


def _discover_atlas(root: str | Path, require_masks: bool) -> Discovery:
    root = _require_dir(root, "the ATLAS_2 folder holding Training/R0xx/sub-*/ses-*/anat/")
    findings: list[Finding] = []
    files = _walk(root, findings)

    def stem_of(path: Path, suffix: str) -> str | None:
        if path.name.startswith("sub-") and path.name.endswith(suffix):
            return str(path.parent / path.name[: -len(suffix)])
        return None

    images = [(s, p) for p in files if (s := stem_of(p, ATLAS_IMAGE_SUFFIX))]
    masks = {s: p for p in files if (s := stem_of(p, ATLAS_MASK_SUFFIX))}
    # ATLAS's Testing/ images have no public masks: not subjects of a study with masks
    held_out = {
        p
        for s, p in images
        if require_masks and s not in masks and "Testing" in p.relative_to(root).parts[:-1]
    }
    images = [(s, p) for s, p in images if p not in held_out]

    def record(stem: str, image: Path, mask: Path | None) -> SubjectRecord:
        cohort = next((p.name for p in image.parents if re.fullmatch(r"R\d+", p.name)), "")
        return SubjectRecord(Path(stem).name.split("_")[0], image, mask, "atlas", cohort)

    records = _pair(
        images,
        masks,
        record,
        lambda stem, _: f"no lesion mask beside it (expected {Path(stem).name}{ATLAS_MASK_SUFFIX})",
        lambda stem, _: (
            Path(stem + ATLAS_IMAGE_SUFFIX),
            f"no T1w image beside this mask (expected {Path(stem).name}{ATLAS_IMAGE_SUFFIX})",
        ),
        require_masks,
    )
    if not records:
        raise _nothing_found(
            root,
            "no ATLAS v2.0 images found (expected "
            f"Training/R0xx/sub-*/ses-*/anat/sub-*{ATLAS_IMAGE_SUFFIX})",
            findings,
        )
    if held_out:
        testing = next(p for p in min(held_out).parents if p.name == "Testing")
        findings.append(
            Finding(
                "info",
                testing,
                f"{count(len(held_out), 'image')} without masks (ATLAS's test set): not used",
            )
        )
    used = {p for r in records for p in (r.image, r.mask)} | held_out
    strays = [p for p in files if p.name.endswith(NIFTI_SUFFIXES) and p not in used]
    findings += _not_used(strays, "ATLAS v2.0")
    return Discovery(root, records, findings, check_command(root, "atlas"))


def find_atlas(root: str | Path, require_masks: bool = True) -> list[SubjectRecord]:
    """Find ATLAS v2.0 subjects: ``Training/R0xx/sub-*/ses-*/anat/*_T1w.nii.gz`` + lesion mask.

    ``root`` may be the ``ATLAS_2`` folder, its ``Training`` folder, or any folder holding
    cohort folders; the search is recursive on the exact BIDS names. Images under a
    ``Testing`` folder without masks (ATLAS's test set) are left out.

    Raises:
        LesionresError: no T1w image found, or any error of :func:`discover` (all listed).
    """
    return _discover_atlas(root, require_masks).usable()


# --------------------------------------------------------------------------- ISLES 2022


def _discover_isles(root: str | Path, modality: IslesModality, require_masks: bool) -> Discovery:
    root = _require_dir(root, "the ISLES 2022 folder holding rawdata/ or sub-strokecase*/")
    findings: list[Finding] = []
    images: dict[str, dict[str, list[Path]]] = {}
    masks: dict[str, list[Path]] = {}
    strays = []
    for path in _walk(root, findings):
        if not path.name.endswith(NIFTI_SUFFIXES):
            continue
        if "derivatives" in path.relative_to(root).parts:
            match = ISLES_MASK.match(path.name)
            if match:
                masks.setdefault(match.group(1), []).append(path)
                continue
        else:
            match = ISLES_IMAGE.match(path.name)
            if match:
                found = images.setdefault(match.group(1), {})
                found.setdefault(match.group(3).lower(), []).append(path)
                continue
        strays.append(path)
    records = []
    for subject in sorted(images.keys() | masks.keys()):
        paths = images.get(subject, {})
        subject_masks = masks.get(subject, [])
        mask = subject_masks[0] if subject_masks else None
        found = paths.get(modality, [])
        # a file of this subject to point at: its image, else its mask, else another modality
        anchor = found[0] if found else mask or next(iter(paths.values()))[0]
        session = re.search(r"_(ses-[^_]+)_", anchor.name)
        stem = f"{subject}_{session.group(1) if session else 'ses-0001'}"
        problems = []
        if not found:
            found = [root / "rawdata" / subject / stem.split("_")[1] / f"{stem}_{modality}.nii.gz"]
            problems.append(
                Finding(
                    "error",
                    anchor,
                    f"no {modality} image for {subject} (expected "
                    f"rawdata/{subject}/ses-*/{stem}_{modality}.nii.gz or "
                    f"{subject}/ses-*/{{dwi,anat}}/{stem}_{modality}.nii.gz)",
                )
            )
        if mask is None and require_masks:
            problems.append(
                Finding(
                    "error",
                    anchor,
                    f"no lesion mask for {subject} (expected "
                    f"derivatives/{subject}/ses-*/{subject}_ses-*_msk.nii.gz)",
                )
            )
        problems += [
            Finding("error", other, f"a second lesion mask for {subject} (also {mask})")
            for other in subject_masks[1:]
        ]
        extra = {m: p[0] for m, p in paths.items()}
        records += [  # the chosen modality twice: two records, flagged as duplicate ids
            SubjectRecord(subject, image, mask, "isles22", "", extra, problems=tuple(problems))
            for image in found
        ]
    if not any(modality in modalities for modalities in images.values()):
        raise _nothing_found(
            root,
            f"no ISLES 2022 {modality} images found (expected "
            f"rawdata/sub-*/ses-*/sub-*_ses-*_{modality}.nii.gz or "
            f"sub-*/ses-*/{{dwi,anat}}/sub-*_ses-*_{modality}.nii.gz)",
            findings,
        )
    findings += _not_used(strays, "ISLES 2022")
    return Discovery(root, records, findings, check_command(root, "isles22", modality))


def find_isles(
    root: str | Path, modality: IslesModality = "dwi", require_masks: bool = True
) -> list[SubjectRecord]:
    """Find ISLES 2022 subjects in either public layout.

    Layouts: ``rawdata/sub-X/ses-0001/sub-X_ses-0001_{dwi,adc,flair}.nii.gz`` or the release
    zip's ``sub-X/ses-0001/{dwi,anat}/sub-X_ses-0001_{dwi,adc,FLAIR}.nii.gz``; masks in
    ``derivatives/sub-X/ses-0001/sub-X_ses-0001_msk.nii.gz`` (DWI grid). The chosen modality is
    ``image``; all modalities found are in ``extra``. FLAIR lies on another grid than the mask:
    the data pipeline resamples it onto the mask's grid.

    Raises:
        LesionresError: no image of that modality found, or any error of :func:`discover`
            (all listed).
    """
    return _discover_isles(root, modality, require_masks).usable()


# --------------------------------------------------------------------------- plain folders


def _discover_folder(root: str | Path, require_masks: bool) -> Discovery:
    root = Path(root).expanduser()
    if root.is_file() and root.suffix.lower() == ".csv":
        return _discover_csv(root, require_masks)
    root = _require_dir(root, "a folder with images/ and masks/, or a CSV of image,mask")
    findings: list[Finding] = []
    image_dir = root / "images"
    if image_dir.is_dir():
        mask_dir = next((root / d for d in ("masks", "labels") if (root / d).is_dir()), None)
        image_files = _list_dir(image_dir, findings)
        mask_files = _list_dir(mask_dir, findings) if mask_dir else []
        strays = [p for p in image_files + mask_files if not p.name.endswith(NIFTI_SUFFIXES)]
        images = [(strip_image_suffix(p.name), p) for p in image_files if p not in strays]
        mask_candidates = [(strip_image_suffix(p.name), p) for p in mask_files if p not in strays]
        mask_dir = mask_dir or root / "masks"
        image_name, mask_name = "images/{}.nii.gz", f"{mask_dir.name}/{{}}.nii.gz"
    else:
        files = _list_dir(root, findings)
        images = [
            (strip_image_suffix(p.name)[: -len("_image")], p)
            for p in files
            if strip_image_suffix(p.name).endswith("_image") and p.name.endswith(NIFTI_SUFFIXES)
        ]
        mask_candidates = [
            (strip_image_suffix(p.name)[: -len("_mask")], p)
            for p in files
            if strip_image_suffix(p.name).endswith("_mask") and p.name.endswith(NIFTI_SUFFIXES)
        ]
        used = {p for _, p in images + mask_candidates}
        strays = [p for p in files if p.name.endswith(NIFTI_SUFFIXES) and p not in used]
        image_dir = mask_dir = root
        image_name, mask_name = "{}_image.nii.gz", "{}_mask.nii.gz"
    masks: dict[str, Path] = {}
    for sid, path in sorted(mask_candidates, key=lambda m: not m[1].name.endswith(".nii.gz")):
        if sid in masks:
            strays.append(path)  # <id>.nii beside <id>.nii.gz: the .nii.gz is the mask
        else:
            masks[sid] = path
    records = _pair(
        images,
        masks,
        lambda sid, image, mask: SubjectRecord(sid, image, mask, "folder"),
        lambda sid, _: f"no mask found for {sid!r} (expected {mask_name.format(sid)})",
        lambda sid, _: (
            image_dir / Path(image_name.format(sid)).name,
            f"no image found for this mask of {sid!r} (expected {image_name.format(sid)})",
        ),
        require_masks,
    )
    if not records:
        raise _nothing_found(
            root,
            "no images found (expected images/<id>.nii.gz + masks/<id>.nii.gz, "
            "or <id>_image.nii.gz + <id>_mask.nii.gz)",
            findings,
        )
    findings += _not_used(sorted(strays), "image or mask")
    return Discovery(root, records, findings, check_command(root, "folder"))


def _discover_csv(path: Path, require_masks: bool) -> Discovery:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "image" not in rows[0]:
        raise LesionresError(f"{path}: expected a CSV with an 'image' column (and 'mask')")
    records = []
    findings: list[Finding] = []
    for line, row in enumerate(rows, start=2):
        image_text = (row.get("image") or "").strip()
        if not image_text:
            findings.append(Finding("error", path, f"line {line}: no image given"))
            continue
        image = (path.parent / image_text).resolve()
        mask_text = (row.get("mask") or "").strip()
        mask = (path.parent / mask_text).resolve() if mask_text else None
        problems = [
            Finding("error", path, f"line {line}: {what} file {file} does not exist")
            for what, file in (("image", image), ("mask", mask))
            if file is not None and not file.exists()
        ]
        if mask is None and require_masks:
            problems.append(Finding("error", path, f"line {line}: no mask given for {image.name}"))
        sid = (row.get("subject_id") or "").strip() or strip_image_suffix(image.name)
        cohort = (row.get("cohort") or "").strip()
        records.append(SubjectRecord(sid, image, mask, "folder", cohort, problems=tuple(problems)))
    return Discovery(path, records, findings, check_command(path, "folder"))


def find_folder(root: str | Path, require_masks: bool = True) -> list[SubjectRecord]:
    """Find image/mask pairs in a plain folder or a CSV file.

    Folder: ``images/<id>.nii.gz`` with ``masks/<id>.nii.gz`` (``labels/`` also accepted), or
    files ``<id>_image.nii.gz`` / ``<id>_mask.nii.gz`` side by side. CSV: columns
    ``image`` and ``mask`` (optional ``subject_id``, ``cohort``); relative paths are taken from
    the CSV's folder.

    Raises:
        LesionresError: nothing found, no ``image`` column, or any error of :func:`discover`
            (all listed).
    """
    return _discover_folder(root, require_masks).usable()


# --------------------------------------------------------------------------- any layout


def discover(
    kind: DatasetKind,
    root: str | Path,
    modality: IslesModality = "dwi",
    require_masks: bool = True,
) -> Discovery:
    """Every subject of ``root`` in the ``kind`` layout, with every problem of the folders.

    Unlike :func:`find_subjects` this does not raise for a subject's problem (an image
    without its mask, a mask without its image, a missing file named in a CSV) nor for an
    unreadable folder: they are findings, so ``check`` reads every other subject and lists
    them all. ``synthetic`` trees use the ATLAS layout.

    Raises:
        LesionresError: ``root`` is not a folder (or CSV), holds no subject at all, or
            ``kind`` is unknown.
    """
    if kind in ("atlas", "synthetic"):
        return _discover_atlas(root, require_masks)
    if kind == "isles22":
        return _discover_isles(root, modality, require_masks)
    if kind == "folder":
        return _discover_folder(root, require_masks)
    raise LesionresError(
        f"unknown dataset kind {kind!r} (expected atlas, isles22, folder, synthetic)"
    )


def find_subjects(
    kind: DatasetKind,
    root: str | Path,
    modality: IslesModality = "dwi",
    require_masks: bool = True,
) -> list[SubjectRecord]:
    """The usable subjects of :func:`discover`; stops with every error listed, if any."""
    return discover(kind, root, modality, require_masks).usable()


def describe_scans(kind: str, modality: str = "", synthetic: bool = False) -> dict[str, str]:
    """Modality and space of a layout's images, as recorded in results and stated in reports.

    Args:
        kind: Layout: ``atlas``, ``isles22``, ``folder`` or ``synthetic``.
        modality: The ISLES modality read, or a folder's declared modality.
        synthetic: Built-in synthetic images (T1-like in the ATLAS layout; DWI-, FLAIR-like in
            the ISLES 2022 layout, as the modality read).

    Returns:
        ``{"modality": ..., "space": ...}`` for :class:`SubjectRecord`.
    """
    if synthetic or kind == "synthetic":
        if kind in ("atlas", "synthetic"):
            return {"modality": "T1w-like (synthetic)", "space": "MNI152NLin2009aSym"}
        return {"modality": f"{modality or 'dwi'}-like (synthetic)", "space": "scanner-like"}
    if kind == "atlas":
        return {"modality": "T1w", "space": "MNI152NLin2009aSym"}
    if kind == "isles22":
        return {"modality": modality, "space": "scanner"}
    return {"modality": modality, "space": ""}
