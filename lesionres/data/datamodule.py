"""``LesionDataModule``: ATLAS, ISLES, plain folders or the built-in synthetic set, split by
subject, checked, preprocessed as in the study, with the test-time resolution conditions.

The data module owns the model grid: it decides it from the training data in ``fit``, keeps it
in its :meth:`~LesionDataModule.state_dict` (Lightning saves that in every checkpoint under the
class name) and gets it back from the checkpoint for ``validate`` / ``test`` / ``predict``
(``ckpt_path=...``). Checkpoints written before kept it in the LightningModule's part
(``model_grid``): :func:`upgrade_checkpoint` moves it over as they load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from lesionres.conditions import Condition, ExternalTestSet, preset_conditions
from lesionres.data.datasets import ConditionDataset, PreprocessedCache, TrainDataset, VolumeDataset
from lesionres.data.grid import ModelGrid, spacing_of
from lesionres.data.io import load_volume
from lesionres.data.layouts import (
    MNI_DATASETS,
    DatasetKind,
    Discovery,
    IslesModality,
    SubjectRecord,
    describe_scans,
    discover,
    find_subjects,
)
from lesionres.data.scans import ScanDataset, find_scans, list_skipped
from lesionres.data.split import (
    STUDY_TEST_FRACTION,
    STUDY_VAL_FRACTION,
    load_or_make_split,
)
from lesionres.data.synthetic import GENERATOR_VERSION as SYNTHETIC_VERSION
from lesionres.errors import LesionresError
from lesionres.files import write_json
from lesionres.registration import RegisterKind

__all__ = ["LesionDataModule", "checkpoint_grid", "upgrade_checkpoint"]

LEGACY_GRID_KEY = "model_grid"  # where checkpoints kept the grid before the data module did
CHECKED_STAGES = ("fit", "test")  # the stages whose data `setup` checks (as the CLI did)
_GENERATE_KEYS = ("n", "n_isles", "seed", "spacing")  # generate_synthetic's share of the settings


def _first_item(batch: list[dict]) -> dict:
    return batch[0]


class LesionDataModule(pl.LightningDataModule):
    """Data for training and testing the lesion segmenter.

    Args:
        dataset: Layout of ``root``: ``synthetic`` (generated on first use), ``atlas``
            (ATLAS v2.0 BIDS), ``isles22`` (either ISLES 2022 layout) or ``folder``
            (``images/`` + ``masks/``, or a CSV of image,mask).
        root: Dataset folder (or CSV). For ``synthetic`` the folder to generate into.
            In ``predict``: a folder of scans (searched recursively), one scan, or a CSV
            with an ``image`` column; ``dataset`` is then ignored.
        modality: ISLES 2022 modality used as the image (ISLES has no T1w).
        folder_modality: What a ``folder`` dataset's images are (e.g. ``T1w``, ``flair``),
            recorded in the results' ``modality`` column and stated in the report.
        binarize: How mask values become lesion: ``strict`` (only 0/1; anything else is an
            error), ``nonzero`` (> 0, e.g. masks coded 0/255) or ``half`` (>= half the maximum).
        val_fraction: Share of subjects for validation (study: 100 of 655).
        test_fraction: Share of subjects for testing (study: 155 of 655).
        seed: Seed of the subject-level split (and of the synthetic data).
        split_file: JSON file freezing the split; made on first use and reused after.
            Default: ``<root>/splits/split-seed<seed>.json`` (beside the data, so ``fit`` and
            ``test`` share it), copied into each run folder.
        target_shape: Model grid shape; each axis divisible by ``2**depth`` of the U-Net.
        target_spacing: Model grid voxel size in mm; ``None`` keeps the training data's own.
        patch_size: ``None`` trains on whole volumes (the study); else random patches.
        samples_per_volume: Patches per training subject per epoch.
        lesion_fraction: Share of patches centred on a lesion voxel.
        batch_size: Training batch size (validation and test use 1 volume per step).
        num_workers: Data-loading worker processes.
        augment: Random flips and intensity jitter in training.
        resolution_augmentation: Training-time resolution degradation of the image (the mask
            stays at full resolution): ``none``, ``nnunet`` (its mild low-resolution step),
            ``synthseg`` (its acquisition-resolution sampling) or ``sweep`` (every method, up to
            4x isotropic or 5x on one axis: what lesionres tests); see
            :meth:`lesionres.transforms.RandomResolution.preset`.
        resolution_options: :class:`~lesionres.transforms.RandomResolution` arguments that
            override the preset's (or, with ``none``, define the augmentation), e.g.
            ``{p: 0.5, methods: [crude, linear], slice_thickness: [1, 6]}``.
        low_resolution_train: A naturally low-resolution dataset (e.g. the ISLES-like synthetic
            set, or your own clinical scans) from which training subjects are added, each
            resampled onto the model grid: mixed-resolution training. The subjects it lends
            are left out of any external test cohort on the same folder.
        low_resolution_share: Share of the training subjects that come from
            ``low_resolution_train`` (capped by its size); the draw follows ``seed``.
        cache_dir: Preprocessed-volume cache (``.npy``); ``auto`` is
            ``$LESIONRES_CACHE`` or ``~/.cache/lesionres``; ``None`` turns it off.
        conditions: Test-time resolution conditions; ``None`` takes ``condition_preset``.
        condition_preset: ``study`` (original, crude x2, linear x2, acquisition 1x1x5 mm),
            ``sweep`` (factors 1.5-4 and 3/5/7 mm slices) or ``none`` (original only).
        external: Extra test cohorts scored as they are (e.g. ISLES 2022). For ``synthetic``
            the generated ISLES-like set is added when this is ``None``.
        synthetic_subjects: ATLAS-like subjects to generate.
        synthetic_isles_subjects: ISLES-like subjects to generate.
        synthetic_spacing: Voxel size (mm) of the generated ATLAS-like set.
        register: ``mni`` registers each ``predict`` scan, and each test scan of a dataset in
            scanner space (``isles22``, ``folder``, external cohorts; ``atlas`` and
            ``synthetic`` lie in MNI space already), to the MNI152 2009a template (affine:
            :mod:`lesionres.registration`) before the model sees it, and maps the prediction
            back through the inverse: for a model trained on MNI-registered data (ATLAS,
            synthetic). ``none`` (default) takes scans as they lie. Whole-head and
            skull-stripped scans alike (the template is skull-stripped; the fit looks at its
            brain and 4 mm around).
        check_data: Read every file of the dataset completely before ``fit`` and ``test``
            (in :meth:`setup`; for ``test`` the external cohorts too) and stop with every
            error listed (:func:`~lesionres.data.run_check.validate_for_run`; passes are
            cached in ``<root>/splits/check-cache.json``). ``False`` skips the check.
    """

    def __init__(
        self,
        dataset: DatasetKind = "synthetic",
        root: str = "data/synthetic",
        modality: IslesModality = "dwi",
        folder_modality: str = "",
        binarize: Literal["strict", "nonzero", "half"] = "strict",
        val_fraction: float = STUDY_VAL_FRACTION,
        test_fraction: float = STUDY_TEST_FRACTION,
        seed: int = 42,
        split_file: str | None = None,
        target_shape: tuple[int, int, int] = (208, 240, 192),
        target_spacing: tuple[float, float, float] | None = None,
        patch_size: tuple[int, int, int] | None = None,
        samples_per_volume: int = 1,
        lesion_fraction: float = 2 / 3,
        batch_size: int = 1,
        num_workers: int = 0,
        augment: bool = False,
        resolution_augmentation: Literal["none", "nnunet", "synthseg", "sweep"] = "none",
        resolution_options: dict | None = None,
        low_resolution_train: ExternalTestSet | None = None,
        low_resolution_share: float = 0.25,
        cache_dir: str | None = "auto",
        conditions: list[Condition] | None = None,
        condition_preset: Literal["study", "sweep", "none"] = "study",
        external: list[ExternalTestSet] | None = None,
        synthetic_subjects: int = 40,
        synthetic_isles_subjects: int = 10,
        synthetic_spacing: float = 2.0,
        register: RegisterKind = "none",
        check_data: bool = True,
    ) -> None:
        super().__init__()
        # conditions/external are dataclasses: kept out of checkpoints so that they load with
        # torch.load(weights_only=True); the run's config.yaml records them
        self.save_hyperparameters(ignore=["conditions", "external", "low_resolution_train"])
        self.condition_list = conditions
        self.external_list = external
        self.low_resolution_set = low_resolution_train
        if not 0 <= low_resolution_share < 1:
            raise LesionresError(
                f"--data.low_resolution_share must be in [0, 1), got {low_resolution_share}"
            )
        self.root = Path(root).expanduser()
        self.grid: ModelGrid | None = None
        self.split: dict[str, list[str]] = {}
        self.records: dict[str, list[SubjectRecord]] = {}
        self.test_sets: list[tuple[str, ConditionDataset]] = []
        self._lent: set[tuple[Path, str]] = set()  # (folder, subject) of low-resolution training
        self._discovery: Discovery | None = None
        self._checked: set[str] = set()  # what setup has checked: "dataset", "external"

    # ----------------------------------------------------------------- discovery and split
    @property
    def data_root(self) -> Path:
        """Folder the finder searches (the ATLAS-like tree for synthetic data)."""
        return self.root / "ATLAS_2" if self.hparams.dataset == "synthetic" else self.root

    @property
    def external_sets(self) -> list[ExternalTestSet]:
        """Cohorts tested as they are (for ``synthetic``, by default its ISLES-like set)."""
        if self.external_list is not None:
            return list(self.external_list)
        if self.hparams.dataset == "synthetic" and self.hparams.synthetic_isles_subjects > 0:
            return [ExternalTestSet("isles22", str(self.root / "ISLES22"), "isles22", "dwi")]
        return []

    @property
    def conditions(self) -> list[Condition]:
        """The test-time resolution conditions (given, or the preset's)."""
        return list(self.condition_list or preset_conditions(self.hparams.condition_preset))

    def prepare_data(self) -> None:
        """Generate the synthetic dataset on first use, or anew when its settings changed.

        Nothing is downloaded. A dataset written with another size, seed or spacing (e.g. by an
        older default) or by another version of the generator is replaced with its split, so a
        run never silently uses other data.
        """
        if self.hparams.dataset != "synthetic":
            return
        if self.trainer is not None and self.trainer.state.fn == "predict":
            return  # in predict, root is the user's folder of scans: write nothing there
        wanted = {
            "n": self.hparams.synthetic_subjects,
            "n_isles": self.hparams.synthetic_isles_subjects,
            "seed": self.hparams.seed,
            "spacing": float(self.hparams.synthetic_spacing),
            "generator_version": SYNTHETIC_VERSION,  # an older generator's images are stale
        }
        manifest = self.root / "synthetic.json"
        if manifest.exists():
            try:
                written = json.loads(manifest.read_text())
            except (OSError, ValueError):
                written = {}
            if all(written.get(k) == v for k, v in wanted.items()):
                return
            print(f"{self.root}: written with other settings; generating it anew with {wanted}")
            shutil.rmtree(self.root / "splits", ignore_errors=True)  # its split is stale too
        from lesionres.data.synthetic import generate_synthetic

        generate_synthetic(self.root, **{k: v for k, v in wanted.items() if k in _GENERATE_KEYS})

    def setup(self, stage: str | None = None) -> None:
        """Check the data (``fit``, ``test``), find subjects, freeze the split, decide the model
        grid; record the split in the run.

        With ``check_data`` every file is read completely first, so a bad file stops the run
        with every error listed before any training or scoring (``test`` checks the external
        cohorts as well). ``predict`` finds its scans in :meth:`predict_dataloader`.
        """
        if stage == "predict":
            return
        checking = self.hparams.check_data and stage in CHECKED_STAGES
        if checking and "dataset" not in self._checked:
            found = self.discovery
            self._check_files(found.records, found.root, found.findings)
        if not self.records:
            self._discover()
        if checking and "dataset" not in self._checked:
            checked = set(self.discovery.records)
            lent = [r for part in self.records.values() for r in part if r not in checked]
            if lent:  # subjects lent by low_resolution_train
                self._check_files(lent, self.discovery.root)
            self._checked.add("dataset")
        if checking and stage == "test" and "external" not in self._checked:
            for external in self.external_sets:  # read as they are scored
                kind = external.dataset
                modality = self._isles_modality(kind, external.modality)
                cohort = discover(kind, external.root, modality)
                self._check_files(cohort.records, cohort.root, cohort.findings)
            self._checked.add("external")
        if self.trainer is not None:
            log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
            if log_dir and self.trainer.is_global_zero:
                write_json(Path(log_dir) / "split.json", self.split)

    def _check_files(
        self, records: list[SubjectRecord], root: str | Path, extra: tuple | list = ()
    ) -> None:
        """Read ``records`` completely (cached passes skipped); print the warnings, stop with
        every error (:func:`~lesionres.data.run_check.validate_for_run`)."""
        from lesionres.data.run_check import validate_for_run

        cache = self.root / "splits" / "check-cache.json"
        binarize = self.hparams.binarize
        for warning in validate_for_run(records, cache, binarize=binarize, extra=extra, root=root):
            print(f"warning: {warning.path}: {warning.message}", file=sys.stderr)

    @property
    def discovery(self) -> Discovery:
        """Every subject of ``root`` and what the finder saw wrong (file names only; found once).

        :meth:`setup` checks these files completely (``fit`` / ``test``) before it makes the
        split.
        """
        if self._discovery is None:
            kind = self.hparams.dataset
            modality = self.hparams.folder_modality if kind == "folder" else self.hparams.modality
            found = discover(kind, self.data_root, self._isles_modality(kind, modality))
            records = self._label(found.records, kind, self.data_root, modality)
            self._discovery = dataclasses.replace(found, records=records)
        return self._discovery

    def _discover(self) -> None:
        found = self.discovery.usable()  # stops with every error of the folders listed
        by_id = {r.subject_id: r for r in found}
        if len(by_id) != len(found):
            raise LesionresError(f"{self.data_root}: duplicate subject ids in the dataset")
        split_file = Path(
            self.hparams.split_file or self.root / "splits" / f"split-seed{self.hparams.seed}.json"
        )
        self.split = load_or_make_split(
            split_file,
            sorted(by_id),
            self.hparams.val_fraction,
            self.hparams.test_fraction,
            self.hparams.seed,
        )
        self.records = {part: [by_id[i] for i in ids] for part, ids in self.split.items()}
        self.grid = self._infer_grid()
        if self.low_resolution_set is not None:
            self._add_low_resolution_training()

    def _find(self, kind: str, root: str | Path, modality: str) -> list[SubjectRecord]:
        """A layout's records with this run's mask rule and what the images are."""
        found = find_subjects(kind, root, self._isles_modality(kind, modality))
        return self._label(found, kind, root, modality)

    @staticmethod
    def _isles_modality(kind: str, modality: str) -> IslesModality:
        return modality if kind == "isles22" else "dwi"  # type: ignore[return-value]

    def _label(
        self, records: list[SubjectRecord], kind: str, root: str | Path, modality: str
    ) -> list[SubjectRecord]:
        """Records with this run's mask rule and what their images are (modality, space)."""
        described = describe_scans(
            kind,
            modality if kind in ("isles22", "folder") else "",
            synthetic=self.hparams.dataset == "synthetic" and Path(root).is_relative_to(self.root),
        )
        binarize = self.hparams.binarize
        return [dataclasses.replace(r, binarize=binarize, **described) for r in records]

    def _add_low_resolution_training(self) -> None:
        """Lend subjects of the low-resolution set to training (deterministic from the seed)."""
        source = self.low_resolution_set
        found = sorted(
            self._find(source.dataset, source.root, source.modality), key=lambda r: r.subject_id
        )
        share = self.hparams.low_resolution_share
        wanted = round(share / (1 - share) * len(self.records["train"]))
        rng = np.random.default_rng(self.hparams.seed)
        chosen = sorted(
            rng.choice(len(found), size=min(wanted, len(found)), replace=False).tolist()
        )
        lent = [found[i] for i in chosen]
        self.records["train"] = self.records["train"] + lent
        self.split = {**self.split, "train_low_resolution": [r.subject_id for r in lent]}
        self._lent = {(Path(source.root).resolve(), r.subject_id) for r in lent}

    def _infer_grid(self) -> ModelGrid:
        spacing = self.hparams.target_spacing
        if spacing is None:
            reference = (self.records["train"] or self.records["test"])[0]
            _, affine = load_volume(reference.mask or reference.image)
            spacing = tuple(round(s, 4) for s in spacing_of(affine))
        return ModelGrid(
            tuple(float(s) for s in spacing), tuple(int(s) for s in self.hparams.target_shape)
        )

    @property
    def cache(self) -> PreprocessedCache:
        """The preprocessed-volume cache of this grid (``cache_dir``; off when ``None``)."""
        directory = self.hparams.cache_dir
        if directory == "auto":
            directory = os.environ.get("LESIONRES_CACHE", "~/.cache/lesionres")
        return PreprocessedCache(directory, self.grid)

    # ----------------------------------------------------------------------- dataloaders
    def _loader(self, dataset, shuffle: bool, batch_size: int = 1, collate_fn=None) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0 and collate_fn is None,
            collate_fn=collate_fn,
        )

    def resolution_transform(self):
        """The configured training-time resolution augmentation, or ``None``."""
        from lesionres.transforms import RandomResolution

        base = RandomResolution.preset(self.hparams.resolution_augmentation)
        options = self.hparams.resolution_options
        if not options:
            return base
        settings = {name: getattr(base, name) for name in base.args_names} if base else {}
        try:
            return RandomResolution(**{**settings, **options})
        except (TypeError, ValueError) as error:
            raise LesionresError(f"--data.resolution_options: {error}") from None

    def train_dataloader(self) -> DataLoader:
        """Training volumes or patches (shuffled), with the configured augmentation."""
        augmentation = self.resolution_transform()
        dataset = TrainDataset(
            self.records["train"],
            self.cache,
            self.hparams.patch_size,
            self.hparams.samples_per_volume,
            self.hparams.lesion_fraction,
            self.hparams.augment,
            augmentation,
        )
        return self._loader(dataset, shuffle=True, batch_size=self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        """Whole validation volumes on the model grid, one per step."""
        return self._loader(VolumeDataset(self.records["val"], self.cache), shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per condition on the test split, then one per external cohort, on the model
        grid (the checkpoint's, restored by :meth:`load_state_dict`)."""
        # --data.register: ATLAS and the synthetic set lie in MNI space already
        own = "none" if self.hparams.dataset in MNI_DATASETS else self.hparams.register
        self.test_sets = [
            (c.name, ConditionDataset(self.records["test"], c, self.grid, own))
            for c in self.conditions
        ]
        for external in self.external_sets:
            records = self._find(external.dataset, external.root, external.modality)
            root = Path(external.root).resolve()
            records = [r for r in records if (root, r.subject_id) not in self._lent]  # not lent
            dataset = ConditionDataset(
                records, Condition(external.name), self.grid, self.hparams.register
            )
            self.test_sets.append((external.name, dataset))
        names = self.test_names
        if len(set(names)) != len(names):
            raise LesionresError(f"condition names must be unique, got {names}")
        return [self._loader(ds, shuffle=False, collate_fn=_first_item) for _, ds in self.test_sets]

    def predict_dataloader(self) -> DataLoader:
        """Every scan under ``root`` (a folder, one scan, or a CSV with an ``image`` column),
        prepared for the checkpoint's model grid (see :mod:`lesionres.data.scans`)."""
        grid = self.grid
        if grid is None:
            ckpt = getattr(self.trainer, "ckpt_path", None) if self.trainer else None
            raise LesionresError(
                f"{ckpt}: the checkpoint records no model grid (train it with `lesionres fit`)"
                if ckpt
                else "predict needs a trained model: pass --ckpt_path CHECKPOINT"
            )
        skipped: list = []
        dataset = ScanDataset(find_scans(self.root, skipped), grid, self.hparams.register)
        list_skipped(self.root, skipped)  # never silently (e.g. a format it does not read)
        return self._loader(dataset, shuffle=False, collate_fn=_first_item)

    @property
    def test_names(self) -> list[str]:
        """Condition names, in test-dataloader order."""
        return [name for name, _ in self.test_sets]

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """Move a batch to ``device``; of a test/predict item (one scan with its record, grid
        mapping and native-grid mask) only the image, the rest stays on the CPU for scoring."""
        if isinstance(batch, dict) and "record" in batch:
            return {**batch, **({"image": batch["image"].to(device)} if "image" in batch else {})}
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """The model grid, which Lightning saves in every checkpoint (under this class's name).

        Returns:
            ``{"grid": ModelGrid.to_dict()}``, or ``{}`` before the grid is decided.
        """
        return {"grid": self.grid.to_dict()} if self.grid is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take the checkpoint's model grid (Lightning calls this after :meth:`setup` when a
        command runs with ``ckpt_path``): a trained model is tested on the grid it learnt on."""
        if state_dict.get("grid") is not None:
            self.grid = ModelGrid.from_dict(state_dict["grid"])


def upgrade_checkpoint(checkpoint: dict) -> dict:
    """Move the grid of a checkpoint written before the data module kept it (the LightningModule
    saved it as ``model_grid``) into the data module's part, in place.

    Lightning hands :meth:`LesionDataModule.load_state_dict` that part;
    :meth:`lesionres.module.LesionSegmenter.on_load_checkpoint` calls this first.

    Returns:
        ``checkpoint``.
    """
    legacy = checkpoint.pop(LEGACY_GRID_KEY, None)
    if legacy is not None:
        checkpoint.setdefault(LesionDataModule.__qualname__, {}).setdefault("grid", legacy)
    return checkpoint


def checkpoint_grid(checkpoint: dict) -> ModelGrid | None:
    """The model grid a checkpoint records (either place, see :func:`upgrade_checkpoint`), or
    ``None``."""
    state = checkpoint.get(LesionDataModule.__qualname__) or {}
    grid = state.get("grid", checkpoint.get(LEGACY_GRID_KEY))
    return ModelGrid.from_dict(grid) if grid is not None else None
