"""``degrade``: every scan under every condition as NIfTI, by the code path ``test`` uses."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
import torch
from fakes import affine_for, make_folder_tree, write_volume

from lesionres.cli import main
from lesionres.conditions import Condition
from lesionres.data.datasets import ConditionDataset, zscore
from lesionres.data.grid import ModelGrid
from lesionres.data.layouts import find_folder
from lesionres.degrade import output_path
from lesionres.transforms import functional

CONDITIONS = (
    "[{method: original}, {method: acquisition, spacing: [1, 1, 5]}, {method: crude, factor: [2]}]"
)


def _manifest(out):
    with (out / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_native_grid_images_are_what_test_feeds_the_model(tmp_path):
    subjects = make_folder_tree(tmp_path / "data", n=2, shape=(16, 16, 20))
    out = tmp_path / "out"
    assert main(["degrade", str(tmp_path / "data"), "--dataset", "folder", "--conditions",
                 CONDITIONS, "--out", str(out)]) == 0  # fmt: skip
    rows = _manifest(out)
    assert len(rows) == 6
    assert list(rows[0]) == ["condition", "subject_id", "image", "mask", "method", "factor",
                             "spacing_mm", "effective_fwhm_mm"]  # fmt: skip
    acquired = [r for r in rows if r["condition"] == "acquisition_1x1x5mm"]
    assert {r["spacing_mm"] for r in acquired} == {"1x1x5"}
    assert {r["effective_fwhm_mm"] for r in acquired} == {"1.0x1.0x5.0"}
    assert {r["mask"] for r in rows} == {str(s["mask"]) for s in subjects}  # masks not copied
    assert not list(out.rglob("masks"))
    records = find_folder(tmp_path / "data")
    grid = ModelGrid((1.0, 1.0, 1.0), (16, 16, 20))  # the scans' own grid: no resampling
    for condition in (
        Condition(method="acquisition", spacing=[1, 1, 5]),
        Condition(method="crude", factor=[2]),
        Condition(),
    ):
        item = ConditionDataset(records, condition, grid)[0]
        written = nib.load(str(output_path(out, condition.name, records[0].subject_id)))
        np.testing.assert_allclose(written.affine, nib.load(str(records[0].image)).affine)
        fed = item["image"][0].numpy()
        np.testing.assert_allclose(zscore(written.get_fdata().astype(np.float32)), fed, atol=1e-5)
    original = nib.load(str(output_path(out, "original", records[0].subject_id))).get_fdata()
    acquisition = nib.load(str(output_path(out, "acquisition_1x1x5mm", records[0].subject_id)))
    assert not np.allclose(original, acquisition.get_fdata())


def test_acquired_grid_places_every_slice_where_the_model_sampled_it(tmp_path):
    shape = (8, 8, 40)
    affine = affine_for((1.0, 1.0, 1.0), origin=(-4.0, -4.0, -20.0))
    image = np.zeros(shape, np.float32)
    image[..., 17] = 1.0  # a thin plane at world z = -3 mm
    write_volume(tmp_path / "data" / "images" / "case001.nii.gz", image, affine)
    write_volume(tmp_path / "data" / "masks" / "case001.nii.gz", np.zeros(shape, np.uint8), affine)
    out = tmp_path / "out"
    main(["degrade", str(tmp_path / "data"), "--dataset", "folder", "--grid", "acquired",
          "--conditions", "[{method: acquisition, spacing: [1, 1, 5]}]",
          "--out", str(out)])  # fmt: skip
    written = nib.load(str(out / "acquisition_1x1x5mm" / "images" / "case001.nii.gz"))
    assert written.shape == (8, 8, 8)
    assert np.allclose(nib.affines.voxel_sizes(written.affine), (1, 1, 5))
    # the model's own sampling: slice j is centred on source index c_j
    _, _, centres = functional.acquisition_matrices(40, 1.0, 5.0, "box")
    world_z = (written.affine @ np.c_[np.zeros((8, 3)), np.ones(8)].T)[2]
    world_z = (written.affine @ np.array([[0, 0, j, 1] for j in range(8)]).T)[2]
    np.testing.assert_allclose(
        world_z, (affine @ np.c_[np.zeros((8, 2)), centres, np.ones(8)].T)[2]
    )
    # the plane shows up in exactly the slice(s) whose 5 mm slab contains it, at 1/5
    profile = written.get_fdata()[4, 4]
    inside = np.abs(world_z - (-3.0)) < 2.5
    np.testing.assert_allclose(profile[inside], 0.2, atol=1e-6)
    np.testing.assert_allclose(profile[~inside], 0.0, atol=1e-6)


def test_nnunet_layout_resumes_and_refuses_mixed_settings(tmp_path, capsys):
    make_folder_tree(tmp_path / "data", n=2, shape=(12, 12, 12))
    out = tmp_path / "out"
    args = ["degrade", str(tmp_path / "data"), "--dataset", "folder", "--condition_preset",
            "study", "--layout", "nnunet", "--out", str(out)]  # fmt: skip
    main(args)
    files = sorted(out.rglob("*.nii.gz"))
    assert len(files) == 8 and all(f.parent.name == "imagesTs" for f in files)
    assert (out / "acquisition_1x1x5mm" / "imagesTs" / "case001_0000.nii.gz").exists()
    stamps = {f: f.stat().st_mtime_ns for f in files}
    files[0].unlink()
    main(args)  # resumes: only the missing file is written again
    assert all(f.stat().st_mtime_ns == stamps[f] for f in files[1:]) and files[0].exists()
    assert len(_manifest(out)) == 8
    with pytest.raises(SystemExit) as exit_:
        main([*args[:-4], "--grid", "acquired", "--layout", "nnunet", "--out", str(out)])
    assert exit_.value.code == 2
    assert "written with" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--conditions", "[{method: blur}]"], "unknown method"),
        (["--conditions", "[{method: acquisition, spacing: [3], thickness: 2}]"], "slice axis"),
        (["--conditions", "not: [valid"], "not YAML"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    make_folder_tree(tmp_path / "data", n=1, shape=(8, 8, 8))
    with pytest.raises(SystemExit) as exit_:
        main(["degrade", str(tmp_path / "data"), "--dataset", "folder", "--out",
              str(tmp_path / "out"), *extra])  # fmt: skip
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_missing_root_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["degrade", str(tmp_path / "nowhere"), "--dataset", "atlas", "--out", str(tmp_path)])
    assert capsys.readouterr().err.startswith("error:")


def test_degrade_uses_the_same_transform_as_test():
    # one implementation: ConditionDataset and degrade both go through degrade_image
    from lesionres.conditions import degrade_image

    image = torch.rand(12, 12, 20, generator=torch.Generator().manual_seed(0)).numpy()
    condition = Condition(method="acquisition", spacing=[1, 1, 5])
    native, affine = degrade_image(condition, image, np.eye(4))
    expected = functional.acquisition(torch.from_numpy(image)[None], (1, 1, 1), (1, 1, 5))[0]
    np.testing.assert_allclose(native, expected.numpy(), atol=1e-6)
    np.testing.assert_array_equal(affine, np.eye(4))
