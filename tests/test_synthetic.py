"""The synthetic ATLAS-like / ISLES-like datasets as written: layouts, grids, byte-identical
files for a seed, the manifest and ``synth`` (coarse grids: seconds on a CPU)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionres.commands.data import synth_main
from lesionres.data import synthetic as syn
from lesionres.data.layouts import find_atlas, find_isles
from lesionres.data.synthetic_render import ISLES_FOV_MM
from lesionres.errors import LesionresError

COARSE = 4.0  # mm: keeps every rendering to a few tens of milliseconds


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    image = nib.load(str(path))
    return np.asarray(image.dataobj), image.affine, image.get_data_dtype()


@pytest.fixture(scope="module")
def atlas_tree(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("atlas") / "ATLAS_2"
    return out, syn.generate_atlas_like(out, n=5, seed=3, spacing=COARSE, progress=False)


def test_atlas_like_layout_is_read_by_find_atlas(atlas_tree):
    out, images = atlas_tree
    records = find_atlas(out)
    assert sorted(r.image for r in records) == sorted(images)
    assert len({r.subject_id for r in records}) == 5
    assert {r.cohort for r in records} == {"R001", "R002", "R003", "R004"}
    first = out / "Training/R001/sub-r001s001/ses-1/anat"
    assert (first / "sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz").exists()
    mask = "sub-r001s001_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"
    assert (first / mask).exists()


def test_atlas_like_image_and_mask_share_the_grid(atlas_tree):
    out, _ = atlas_tree
    expected_shape = tuple(math.ceil(n / COARSE) for n in (197, 233, 189))
    for record in find_atlas(out):
        image, image_affine, image_dtype = _load(record.image)
        mask, mask_affine, mask_dtype = _load(record.mask)
        assert image.shape == mask.shape == expected_shape
        np.testing.assert_array_equal(image_affine, mask_affine)
        np.testing.assert_allclose(np.diag(image_affine)[:3], COARSE)
        assert image_dtype == np.int16 and mask_dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
        assert image.max() > 300  # a T1-like range, not a normalised one


def test_same_seed_is_byte_identical_and_a_prefix(atlas_tree, tmp_path):
    out, images = atlas_tree
    again = syn.generate_atlas_like(tmp_path / "again", n=3, seed=3, spacing=COARSE, progress=False)
    for first, second in zip(images[:3], again, strict=True):
        assert first.relative_to(out) == second.relative_to(tmp_path / "again")
        assert first.read_bytes() == second.read_bytes()
        suffix = "_label-L_desc-T1lesion_mask"
        masks = [p.with_name(p.name.replace("_T1w", suffix)) for p in (first, second)]
        assert masks[0].read_bytes() == masks[1].read_bytes()
        assert first.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
    other = syn.generate_atlas_like(tmp_path / "other", n=1, seed=4, spacing=COARSE, progress=False)
    assert other[0].read_bytes() != images[0].read_bytes()


def test_isles_like_layout_grid_and_spacing(tmp_path):
    spacings = ((COARSE, COARSE, COARSE), (2.0, 2.0, 6.0))
    images = syn.generate_isles_like(tmp_path, n=2, seed=1, spacings=spacings, progress=False)
    records = find_isles(tmp_path, "dwi")
    assert [r.image for r in records] == images
    name = "sub-strokecase0001/ses-0001/sub-strokecase0001_ses-0001"
    assert images[0] == tmp_path / f"rawdata/{name}_dwi.nii.gz"
    assert records[0].mask == tmp_path / f"derivatives/{name}_msk.nii.gz"
    flair = find_isles(tmp_path, "flair")  # the same heads and lesions, FLAIR-like
    assert [r.mask for r in flair] == [r.mask for r in records]
    assert flair[0].image == tmp_path / f"rawdata/{name}_flair.nii.gz"
    for record, spacing in zip(records, spacings, strict=True):
        image, affine, _ = _load(record.image)
        mask, mask_affine, _ = _load(record.mask)
        assert image.shape == mask.shape
        np.testing.assert_array_equal(affine, mask_affine)
        np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), spacing, rtol=1e-5)
        off_diagonal = affine[:3, :3] - np.diag(np.diag(affine[:3, :3]))
        assert np.abs(off_diagonal).max() > 1e-3  # oblique
        assert set(np.unique(mask)) <= {0, 1}
        fov = np.array(image.shape) * np.array(spacing)
        np.testing.assert_allclose(fov, ISLES_FOV_MM, atol=max(spacing))


def test_synth_main_writes_refuses_and_forces(tmp_path, capsys):
    out = tmp_path / "synthetic"
    argv = ["--out", str(out), "--n", "2", "--n-isles", "1", "--spacing", str(COARSE), "--quiet"]
    argv += ["--seed", "0"]  # not the default run's seed: the manifest records this one
    assert synth_main(argv) == 0
    assert len(find_atlas(out / "ATLAS_2")) == 2
    assert len(find_isles(out / "ISLES22")) == 1
    manifest = json.loads((out / "synthetic.json").read_text())
    assert manifest["seed"] == 0 and manifest["n"] == 2 and manifest["spacing"] == COARSE
    assert len(manifest["atlas"]) == 2 and len(manifest["isles"]) == 1
    assert {"volume_ml", "components", "spec_volume_ml"} <= set(manifest["atlas"][0])
    assert manifest["generator_version"] == syn.GENERATOR_VERSION
    assert set(manifest["parameter_ranges"]) == {"lesions", "anatomy", "contrast"}
    parameters = manifest["isles"][0]["parameters"]  # every subject's own values
    assert set(parameters["contrasts"]) == {"dwi", "flair"}
    assert {"atrophy", "ventricle_mm", "skull_mm", "scale"} <= set(parameters["anatomy"])
    assert "fit" in capsys.readouterr().out

    assert synth_main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert synth_main([*argv[:3], "1", *argv[4:], "--force"]) == 0
    assert len(find_atlas(out / "ATLAS_2")) == 1  # the stale second subject is gone
    with gzip.open(find_atlas(out / "ATLAS_2")[0].image) as handle:
        assert handle.read(4)  # a valid gzip stream


def test_generate_synthetic_leaves_foreign_data_alone(tmp_path):
    precious = tmp_path / "ATLAS_2" / "Training" / "R099" / "notes.txt"
    precious.parent.mkdir(parents=True)
    precious.write_text("real data")
    with pytest.raises(LesionresError, match="not written by"):
        syn.generate_synthetic(tmp_path, n=1, n_isles=0, spacing=COARSE, progress=False)
    assert precious.read_text() == "real data"


@pytest.mark.parametrize("bad", [{"n": -1}, {"spacing": 0.0}, {"seed": -2}])
def test_bad_arguments_raise(tmp_path, bad):
    kwargs = {"n": 1, "seed": 0, "spacing": COARSE, "progress": False, **bad}
    with pytest.raises(LesionresError):
        syn.generate_atlas_like(tmp_path, **kwargs)


def test_datamodule_regenerates_data_written_with_other_settings(tmp_path, capsys):
    from lesionres.data.datamodule import LesionDataModule

    def module(n: int) -> LesionDataModule:
        return LesionDataModule(
            root=str(tmp_path), synthetic_subjects=n, synthetic_isles_subjects=0,
            synthetic_spacing=COARSE, cache_dir=None,
        )  # fmt: skip

    module(2).prepare_data()
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "split-seed42.json").write_text("{}")  # the old data's split
    module(2).prepare_data()  # same settings: kept
    assert (tmp_path / "splits").exists() and "anew" not in capsys.readouterr().out
    module(3).prepare_data()  # an older default's 2 subjects must not be used for 3
    assert "generating it anew" in capsys.readouterr().out
    assert json.loads((tmp_path / "synthetic.json").read_text())["n"] == 3
    assert not (tmp_path / "splits").exists()


def test_figure_shows_the_template_and_both_sets(tmp_path):
    from lesionres.data.synthetic_figure import main

    path = tmp_path / "docs" / "synthetic.png"
    assert main([str(path), "--n", "1", "--n-isles", "1"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
