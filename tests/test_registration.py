"""Registration to the MNI152 2009a template: a scan moved and scaled by a known affine comes
back within 2 mm, a lesion mapped back through the inverse lands where it is in the moved
scan, a failed registration is an error row, and ``predict --data.register mni`` runs end to
end. Scans are 3 mm (registration works at 4 and 2 mm), so each registration takes seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from fakes import write_volume
from scipy import ndimage

from lesionres.cli import main
from lesionres.data.grid import GridMapping, ModelGrid
from lesionres.data.scans import ScanDataset, find_scans
from lesionres.module import LesionSegmenter
from lesionres.prediction import PREDICTION_COLUMNS
from lesionres.registration import (
    RegisteredMapping,
    Registration,
    RegistrationError,
    mni_grid_affine,
    register_to_mni,
    template_volume,
)

GRID = ModelGrid((2.0, 2.0, 2.0), (104, 120, 96))  # the synthetic set's 2 mm grid
LESION_CENTRE, LESION_RADIUS = np.array([-28.0, -10.0, 18.0]), 10.0  # MNI mm (left putamen-ish)


def _rotation(degrees_x: float, degrees_z: float) -> np.ndarray:
    a, c = np.deg2rad(degrees_x), np.deg2rad(degrees_z)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx


def _moved(move: np.ndarray, spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)) -> dict:
    """The template seen by a scanner: MNI point p lies at scan point ``move @ p`` (RAS mm).

    The scan is a ``spacing`` mm RAS grid covering the moved template, blurred to about its
    resolution; its lesion mask is the MNI lesion ball carried along.
    """
    t1, template_affine = template_volume()
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in t1.shape], indexing="ij")).reshape(3, -1)
    world = move[:3, :3] @ (template_affine[:3, :3] @ corners + template_affine[:3, 3:])
    world += move[:3, 3:]
    low, high = world.min(axis=1) - 10, world.max(axis=1) + 10
    spacing = np.asarray(spacing, dtype=float)
    shape = tuple(int(n) for n in np.ceil((high - low) / spacing))
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = low
    # scan voxel -> scan world -> MNI -> template voxel
    to_template = np.linalg.inv(template_affine) @ np.linalg.inv(move) @ affine
    blurred = ndimage.gaussian_filter(t1, spacing / 2.355)  # (about right for small rotations)
    image = ndimage.affine_transform(
        blurred, to_template[:3, :3], to_template[:3, 3], output_shape=shape, order=1
    )
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    mni = (ijk @ (np.linalg.inv(move) @ affine)[:3, :3].T) + (np.linalg.inv(move) @ affine)[:3, 3]
    lesion = np.linalg.norm(mni - LESION_CENTRE, axis=-1) <= LESION_RADIUS
    return {"image": image.astype(np.float32), "affine": affine, "lesion": lesion}


MOVE = np.eye(4)
MOVE[:3, :3] = _rotation(12, -8) @ np.diag([1.10, 0.93, 1.05])
MOVE[:3, 3] = (7.0, -15.0, 24.0)


@pytest.fixture(scope="module")
def cases() -> dict:
    """The unmoved and the moved template at 3 mm, each registered back."""
    out = {}
    for name, move in (("unmoved", np.eye(4)), ("moved", MOVE)):
        scan = _moved(move)
        out[name] = {
            **scan,
            "move": move,
            "registration": register_to_mni(scan["image"], scan["affine"]),
        }
    return out


def _mapped_back(case: dict) -> np.ndarray:
    """A perfect prediction on the model grid (the MNI lesion ball) mapped onto the scan."""
    grid_affine = mni_grid_affine(GRID)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in GRID.shape], indexing="ij"), -1)
    world = ijk @ grid_affine[:3, :3].T + grid_affine[:3, 3]
    ball = (np.linalg.norm(world - LESION_CENTRE, axis=-1) <= LESION_RADIUS).astype(np.float32)
    mapping = RegisteredMapping(case["image"].shape, case["affine"], case["registration"], GRID)
    return mapping.to_native(torch.from_numpy(ball)[None])[0].numpy() >= 0.5


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_moved_and_scaled_template_registers_back_within_2_mm(cases):
    t1, template_affine = template_volume()
    brain = np.argwhere(t1[::3, ::3, ::3] > 30) * 3
    points = brain @ template_affine[:3, :3].T + template_affine[:3, 3]
    for name, case in cases.items():
        found = case["registration"].ras_matrix()
        truth = case["move"]
        error = (points @ found[:3, :3].T + found[:3, 3]) - (
            points @ truth[:3, :3].T + truth[:3, 3]
        )
        mean = float(np.linalg.norm(error, axis=1).mean())
        assert mean < 2.0, (name, mean)
        registration = case["registration"]
        assert registration.ncc > 0.9 and registration.brain_overlap > 0.9, name
        assert registration.warnings() == [], name
        assert registration.seconds < 30


def test_mask_mapped_back_lies_on_the_lesion_of_the_moved_scan(cases):
    dice = {name: _dice(_mapped_back(case), case["lesion"]) for name, case in cases.items()}
    assert dice["unmoved"] > 0.8
    assert dice["moved"] >= 0.9 * dice["unmoved"], dice


def test_scan_on_the_model_grid_with_identity_registration_maps_to_itself():
    grid = ModelGrid((4.0, 4.0, 4.0), (16, 20, 16))
    affine = mni_grid_affine(grid)
    identity = Registration(np.eye(4), 1.0, 1.0, 0.0)
    volume = torch.rand(1, *grid.shape)
    mapping = RegisteredMapping(grid.shape, affine, identity, grid)
    torch.testing.assert_close(mapping.to_model(volume), volume, atol=1e-5, rtol=0)
    torch.testing.assert_close(mapping.to_native(volume), volume, atol=1e-5, rtol=0)
    # a scan with 3x coarser slices: each native voxel gets the mean over its footprint
    coarse = affine.copy()
    coarse[:3, 2] *= 3
    coarse[:3, 3] += affine[:3, 2]  # the first thick slice covers model slices 0-2
    mapping = RegisteredMapping((16, 20, 5), coarse, identity, grid)
    slab = torch.zeros(1, *grid.shape)
    slab[..., 4] = 1.0  # one model slice of lesion: a third of native slice 1
    back = mapping.to_native(slab)
    assert back.shape == (1, 16, 20, 5)
    torch.testing.assert_close(
        back[0, 2:-2, 2:-2, 1], torch.full((12, 16), 1 / 3), atol=1e-5, rtol=0
    )


def test_registered_predictions_stay_in_the_brain():
    """The lesion region: the template's brain + 4 mm on the model grid; outside it a
    registered scan's probabilities are zero (its face, neck, scalp and background)."""
    identity = Registration(np.eye(4), 1.0, 1.0, 0.0)
    affine = mni_grid_affine(GRID)
    mapping = RegisteredMapping(GRID.shape, affine, identity, GRID)
    region = mapping.lesion_region.numpy()
    assert region.shape == GRID.shape
    t1, template_affine = template_volume()
    brain_ml = (t1 > 30).sum() * abs(np.linalg.det(template_affine[:3, :3])) / 1000
    assert brain_ml < region.sum() * 8 / 1000 < 1.5 * brain_ml  # the brain and a margin
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in GRID.shape], indexing="ij"), -1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    assert region[tuple(np.round(np.linalg.solve(affine[:3, :3], -affine[:3, 3])).astype(int))]
    x, y, z = np.moveaxis(world, -1, 0)
    far = (np.abs(x) > 82) | (y > 82) | (y < -120) | (z > 92)  # beyond the brain + 4 mm
    assert far.any() and not region[far].any()

    class Everywhere(LesionSegmenter):  # a model that calls every voxel lesion
        def predict_logits(self, image: torch.Tensor) -> torch.Tensor:
            return torch.full_like(image, 10.0)

    model = Everywhere(base_channels=2, depth=1)
    probability = model.predict_probabilities(torch.zeros(1, *GRID.shape), mapping)
    np.testing.assert_array_equal(probability >= 0.5, region > 0)
    unregistered = GridMapping.plan(GRID.shape, affine, GRID)
    assert (model.predict_probabilities(torch.zeros(1, *GRID.shape), unregistered) > 0.5).all()


def test_mni_grid_places_training_scans_as_grid_mapping_did():
    one_mm = mni_grid_affine(ModelGrid((1.0, 1.0, 1.0), (208, 240, 192)))
    # ATLAS 197x233x189 padded by (5, 3, 1) voxels before: its voxel 0 at (-98, -134, -72)
    np.testing.assert_allclose(one_mm[:3, 3], [-98 - 5, -134 - 3, -72 - 1])
    two_mm = mni_grid_affine(GRID)
    # the synthetic 2 mm set (99x117x95 from -98, -134, -72) padded by (2, 1, 0)
    np.testing.assert_allclose(two_mm[:3, 3], [-98 - 4, -134 - 2, -72])


def test_transform_file_round_trips(cases, tmp_path):
    registration = cases["moved"]["registration"]
    path = registration.save(tmp_path / "scan_from-MNI152NLin2009aSym_to-scan_xfm.tfm")
    read = sitk.ReadTransform(str(path))
    point = (10.0, -20.0, 30.0)
    np.testing.assert_allclose(
        read.TransformPoint(point), registration.transform().TransformPoint(point)
    )
    assert not list(tmp_path.glob(".tmp-*"))


def test_failed_registration_is_an_error_and_noise_gets_a_warning(tmp_path):
    with pytest.raises(RegistrationError, match="registration to MNI failed"):
        register_to_mni(np.zeros((30, 30, 30), np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -60
    write_volume(tmp_path / "zeros.nii.gz", np.zeros((30, 30, 30), np.float32), affine)
    noise = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32)
    write_volume(tmp_path / "noise.nii.gz", noise, affine)
    items = {item["entry"].stem: item for item in ScanDataset(find_scans(tmp_path), GRID, "mni")}
    assert "registration to MNI failed" in items["zeros"]["error"]
    assert any("registration to MNI doubtful" in w for w in items["noise"]["warnings"])


def test_predict_register_mni_end_to_end(atlas_run, tmp_path):
    config, _ = atlas_run
    main(["fit", "--config", str(config)])
    ckpt = next((tmp_path / "logs").rglob("last.ckpt"))
    scan = _moved(MOVE)
    scans = tmp_path / "scans"
    write_volume(scans / "sub-01_T1w.nii.gz", scan["image"], scan["affine"])
    out = tmp_path / "out"
    args = [
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        str(ckpt),
        "--data.root",
        str(scans),
        "--data.register",
        "mni",
        "--predictions.out_dir",
        str(out),
        "--predictions.save_overlays",
        "true",
    ]
    main(args)
    with (out / "predictions.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == PREDICTION_COLUMNS
        (row,) = list(reader)
    assert row["error"] == ""
    assert float(row["registration_ncc"]) > 0.9 and float(row["registration_brain_overlap"]) > 0.9
    assert "not in MNI space" not in row["warnings"]
    mask = nib.load(row["output"])
    assert mask.shape == scan["image"].shape and np.allclose(mask.affine, scan["affine"])
    transform = Path(row["transform"])
    assert transform.name == "sub-01_T1w_from-MNI152NLin2009aSym_to-scan_xfm.tfm"
    assert transform.exists()
    assert (out / "sub-01_T1w_desc-registered_overlay.png").stat().st_size > 1000
    assert (out / "sub-01_T1w_space-MNI152NLin2009aSym_desc-registered.nii.gz").exists()


def test_external_test_scan_is_registered_and_its_row_carries_the_figures(cases, tmp_path):
    from lesionres.conditions import Condition
    from lesionres.data.datasets import ConditionDataset
    from lesionres.data.layouts import SubjectRecord
    from lesionres.module import LesionSegmenter
    from lesionres.results import RESULT_COLUMNS

    moved = cases["moved"]
    image = write_volume(tmp_path / "images" / "case001.nii.gz", moved["image"], moved["affine"])
    mask = moved["lesion"].astype(np.uint8)
    mask_file = write_volume(tmp_path / "masks" / "case001.nii.gz", mask, moved["affine"])
    record = SubjectRecord("case001", image, mask_file, "folder")
    item = ConditionDataset([record], Condition("clinical"), GRID, "mni")[0]
    assert isinstance(item["mapping"], RegisteredMapping)
    assert item["image"].shape == (1, *GRID.shape)
    model = LesionSegmenter(base_channels=2, depth=2)
    row = model.test_step(item, 0)["row"]
    assert row["error"] == ""
    assert float(row["registration_ncc"]) > 0.9
    columns = list(RESULT_COLUMNS)
    assert columns[-3:] == ["registration_ncc", "registration_brain_overlap", "error"]


def test_thick_slice_scan_registers_too():
    """A clinical-like 1.5x1.5x5 mm scan: smoothing to 2 mm leaves the 5 mm axis alone."""
    scan = _moved(MOVE, spacing=(1.5, 1.5, 5.0))
    registration = register_to_mni(scan["image"], scan["affine"])
    t1, template_affine = template_volume()
    points = np.argwhere(t1[::3, ::3, ::3] > 30) * 3 @ template_affine[:3, :3].T
    points += template_affine[:3, 3]
    found = registration.ras_matrix()
    error = points @ (found - MOVE)[:3, :3].T + (found - MOVE)[:3, 3]
    assert np.linalg.norm(error, axis=1).mean() < 2.0


@pytest.mark.parametrize(("kind", "expected"), [("folder", "mni"), ("atlas", "none")])
def test_register_applies_to_scanner_space_test_sets_only(tmp_path, kind, expected):
    from fakes import make_atlas_tree, make_folder_tree

    from lesionres.commands.evaluation import benchmark
    from lesionres.commands.signature import parse_command
    from lesionres.conditions import ExternalTestSet
    from lesionres.data.datamodule import LesionDataModule

    make_folder_tree(tmp_path / "folder", n=3)
    make_atlas_tree(tmp_path, n=3)
    root = tmp_path / "folder" if kind == "folder" else tmp_path
    external = [ExternalTestSet("clinical", str(tmp_path / "folder"), "folder", "T1w")]
    module = LesionDataModule(
        dataset=kind, root=str(root), register="mni", val_fraction=0.34, test_fraction=0.34,
        cache_dir=None, condition_preset="none", external=external, target_shape=(16, 16, 16),
    )  # fmt: skip
    module.setup("test")
    module.test_dataloader()
    registers = {name: dataset.register for name, dataset in module.test_sets}
    assert registers == {"original": expected, "clinical": "mni"}  # ATLAS is in MNI already
    argv = ["root", "--out", "b", "--ckpt_path", "x", "--register", "mni"]
    assert parse_command(benchmark, argv, "lesionres benchmark")["register"] == "mni"
