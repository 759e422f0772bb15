"""``benchmark``: any command-line model under every condition, scored like ours, compared.

A stand-in predictor (a script that thresholds the image) runs through the whole road: its
failure on one condition gives error rows and a log while the run goes on, a rerun skips what is
done, and the report compares it with another model per condition. The round trip runs
lesionres's own ``predict`` as an external command beside ``--ckpt_path`` (``test``): both
routes must give the same Dice for every (scan, condition).
"""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from fakes import make_folder_tree

from lesionres.benchmark import parse_predictors
from lesionres.cli import main
from lesionres.errors import LesionresError
from lesionres.results import read_rows

CONDITIONS = "[{method: original}, {method: linear, factor: [2]}, {method: crude, factor: [2]}]"
SWEEP = (
    "[{method: original}, {method: linear, factor: [2]}, {method: linear, factor: [3]}, "
    "{method: crude, factor: [2]}]"
)  # linear at two factors: a resolution curve
PYTHON = shlex.quote(sys.executable)

# thresholds every image of {input} into {output}; fails on conditions named fail*;
# appends one line per run to calls.txt (so a test can count runs)
STAND_IN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import nibabel as nib
    import numpy as np

    source, target, low, high = Path(sys.argv[1]), Path(sys.argv[2]), *map(float, sys.argv[3:5])
    mode, fail = sys.argv[5:7]
    with open(Path(__file__).with_name("calls.txt"), "a") as calls:
        calls.write(source.parent.name + "\\n")
    if source.parent.name.startswith(fail):
        print("stand-in: cannot handle", source.parent.name)
        sys.exit(3)
    for path in sorted(source.glob("*.nii.gz")):
        image = nib.load(str(path))
        data = image.get_fdata()
        mask = ((data > low) & (data < high)).astype(np.uint8)
        name = path.name.replace("_0000.nii.gz", ".nii.gz")
        if mode == "probability":
            out = mask * 0.9
        elif mode == "renamed":
            name, out = "x" + name, mask
        elif mode == "coarse":
            out = mask[::2]
            image = nib.Nifti1Image(out, image.affine @ np.diag([2, 1, 1, 1]))
        else:
            out = mask
        if mode != "coarse":
            image = nib.Nifti1Image(out, image.affine)
        print("wrote", name)
        nib.save(image, str(target / name))
    """
)


def _stand_in(
    tmp_path: Path, name: str, low: float, high: float, mode: str = "binary", fail: str = "-"
) -> str:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return f"{name}={PYTHON} {script} {{input}} {{output}} {low} {high} {mode} {fail}"


def _benchmark(root: Path, out: Path, *extra: str) -> int:
    return main(["benchmark", str(root), "--dataset", "folder", "--out", str(out),
                 "--no-progress", *extra])  # fmt: skip


def test_stand_in_predictors_failure_rerun_and_model_comparison(tmp_path, capsys):
    make_folder_tree(tmp_path / "data", n=6, seed=4)
    out = tmp_path / "bench"
    args = [
        "--conditions", SWEEP,
        "--predictor", _stand_in(tmp_path, "dark", 0.2, 0.7, fail="crude"),  # lesion 0.4, brain 1
        "--predictor", _stand_in(tmp_path, "wide", 0.2, 1.0),
        "--layout", "wide=nnunet",
    ]  # fmt: skip
    assert _benchmark(tmp_path / "data", out, *args) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "results.csv", dtype=str, keep_default_na=False)
    assert len(table) == 2 * 4 * 6  # every (model, condition, scan) a row
    assert set(table["model"]) == {"dark", "wide"} and set(table["dataset"]) == {"folder"}
    failed = table[table["error"] != ""]
    assert set(failed["model"] + "/" + failed["condition"]) == {"dark/crude_x2"}
    assert failed["error"].str.contains("failed on crude_x2 \\(exit status 3\\)").all()
    log = out / "logs" / "dark" / "crude_x2.log"
    assert "cannot handle crude_x2" in log.read_text() and str(log) in failed["error"].iloc[0]
    assert "warning: dark failed on crude_x2" in printed and "last line: stand-in" in printed
    ok = table[table["error"] == ""]
    dice = ok[ok["model"] == "dark"].set_index("condition")["dice"].astype(float)
    assert (dice["original"] > 0.99).all() and (dice["linear_x2"] < 0.5).all()  # edges blurred
    assert set(ok.loc[ok["condition"] == "linear_x2", "spacing_mm"]) == {"2"}
    assert set(ok.loc[ok["condition"] == "linear_x2", "effective_fwhm_mm"]) == {"2.0"}
    assert (out / "images-nnunet" / "original" / "imagesTs" / "case001_0000.nii.gz").exists()

    comparison = pd.read_csv(out / "report" / "model_comparisons.csv")
    comparison = comparison.set_index("condition")
    for condition in ("original", "linear_x2", "linear_x3"):
        assert comparison.loc[condition, "test"] == "Wilcoxon signed-rank"
        assert comparison.loc[condition, "n_pairs"] == 6
    assert comparison.loc["original", "median_diff"] > 0.5  # dark beats wide on sharp images
    assert comparison.loc["crude_x2", "n_pairs"] == 0  # dark has no mask there: no test
    assert "6 failed row(s)" in comparison.loc["crude_x2", "note"]
    assert "Models compared within each condition" in (out / "report" / "report.md").read_text()
    assert (out / "report" / "figures" / "resolution_dice.png").exists()  # a curve per model

    calls = tmp_path / "calls.txt"
    assert len(calls.read_text().split()) == 8
    assert _benchmark(tmp_path / "data", out, *args) == 0  # rerun: only the failure again
    assert calls.read_text().split()[8:] == ["crude_x2"]
    assert len(read_rows(out / "results.csv")) == 48


def test_outputs_that_cannot_be_scored_are_named_in_one_line(tmp_path, capsys):
    make_folder_tree(tmp_path / "data", n=2, seed=1)
    out = tmp_path / "bench"
    args = ["--condition_preset", "none", "--no-figures"]
    for name, mode in (("prob", "probability"), ("renamed", "renamed"), ("coarse", "coarse")):
        args += ["--predictor", _stand_in(tmp_path, name, 0.2, 0.7, mode)]
    _benchmark(tmp_path / "data", out, *args)
    printed = capsys.readouterr().out
    rows = read_rows(out / "results.csv")
    errors = {r["model"]: r["error"] for r in rows}
    assert "not binary" in errors["prob"] and "--binarize" in errors["prob"]
    assert errors["renamed"] == "no prediction"
    assert "shape" in errors["coarse"] and "differs from its input" in errors["coarse"]
    lines = printed.splitlines()
    assert any(line.startswith("warning: prob on original:") and "case001.nii.gz" in line
               and "not binary" in line for line in lines)  # fmt: skip
    assert any(line.startswith("warning: renamed on original: 2 output file(s) match no input")
               and "xcase001.nii.gz" in line for line in lines)  # fmt: skip
    assert any(line.startswith("warning: coarse on original:") for line in lines)
    with pytest.raises(SystemExit) as stop:  # a changed command under the same name
        _benchmark(tmp_path / "data", out, "--condition_preset", "none",
                   "--predictor", _stand_in(tmp_path, "prob", 0.3, 0.7, "probability"))  # fmt: skip
    assert stop.value.code == 2 and "with another command" in capsys.readouterr().err

    # probability maps are read as such when asked; names and markers stay
    binarized = tmp_path / "bench-half"
    _benchmark(tmp_path / "data", binarized, "--condition_preset", "none", "--no-figures",
               "--binarize", "half", "--predictor", _stand_in(tmp_path, "prob", 0.2, 0.7,
                                                              "probability"))  # fmt: skip
    rows = read_rows(binarized / "results.csv")
    assert all(not r["error"] and float(r["dice"]) > 0.8 for r in rows)


def test_acquired_grid_masks_are_scored_on_the_ground_truth_grid(tmp_path):
    make_folder_tree(tmp_path / "data", n=2, seed=2)
    out = tmp_path / "bench"
    _benchmark(tmp_path / "data", out, "--grid", "acquired", "--no-figures", "--conditions",
               "[{method: linear, factor: [2]}]",
               "--predictor", _stand_in(tmp_path, "dark", 0.2, 0.7))  # fmt: skip
    rows = read_rows(out / "results.csv")
    assert len(rows) == 2 and all(not r["error"] for r in rows)
    for row in rows:  # each 2 mm voxel of the mask covers its 8 voxels of the 1 mm truth
        masks = out / "predictions" / "dark" / "linear_x2"
        coarse = nib.load(str(masks / f"{row['subject_id']}.nii.gz"))
        assert int(row["tp"]) + int(row["fp"]) == 8 * int(coarse.get_fdata().sum())
        assert float(row["recall"]) > 0.6


@pytest.mark.parametrize(
    ("specs", "layouts", "message"),
    [
        (["a"], [], "expected NAME=COMMAND"),
        (["a=run {input}"], [], "no {output}"),
        (["a=x {input} {output}", "a=y {input} {output}"], [], "given twice"),
        (["lesionres=x {input} {output}"], [], "own model"),
        (["a=x {input} {output}"], ["b=nnunet"], "no --predictor named 'b'"),
        (["a=x {input} {output}"], ["a=monai"], "expected [NAME=]folder"),
    ],
)
def test_bad_predictor_options(specs, layouts, message):
    with pytest.raises(LesionresError, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_predictors(specs, layouts, reserved="lesionres")


def test_layouts_per_predictor_and_for_all():
    specs = ["a=x {input} {output}", "b=y {input} {output}"]
    assert [p.layout for p in parse_predictors(specs, ["b=nnunet"])] == ["folder", "nnunet"]
    assert [p.layout for p in parse_predictors(specs, ["nnunet", "a=folder"])] == [
        "folder", "nnunet",
    ]  # fmt: skip
    assert parse_predictors(specs[:1])[0].render(Path("in dir"), Path("out")) == "x 'in dir' out"


def test_round_trip_own_predict_as_external_equals_test(atlas_run):
    config, tmp_path = atlas_run
    assert main(["fit", "--config", str(config), "--trainer.max_epochs", "3"]) == 0
    run = tmp_path / "logs" / "tiny" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    predict = (f"{PYTHON} -m lesionres predict --config {config} --ckpt_path {ckpt} "
               "--data.root {input} --predictions.out_dir {output}")  # fmt: skip
    out = tmp_path / "bench"
    assert main(["benchmark", str(tmp_path / "ATLAS_2"), "--dataset", "atlas", "--config",
                 str(config), "--conditions", CONDITIONS, "--predictor", f"self={predict}",
                 "--ckpt_path", str(ckpt), "--split_file", str(run / "split.json"),
                 "--out", str(out), "--no-progress", "--no-figures"]) == 0  # fmt: skip
    table = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert set(table["model"]) == {"self", "lesionres"} and (table["error"] == "").all()
    tested = sorted(__import__("json").loads((run / "split.json").read_text())["test"])
    assert sorted(set(table["subject_id"])) == tested
    wide = table.pivot(index=["subject_id", "condition"], columns="model", values="dice")
    assert len(wide) == len(tested) * 3
    np.testing.assert_allclose(wide["self"], wide["lesionres"], atol=0.01)
    assert (wide["self"] == wide["lesionres"]).all()  # here exactly: the same float32 images
    key = ["subject_id", "condition"]
    volume = table.pivot(index=key, columns="model", values="pred_volume_ml")
    assert (volume["lesionres"] > 0).any()  # a model that predicts something: not trivially equal
    for column in ("dataset", "cohort", "modality", "space", "spacing_mm", "effective_fwhm_mm"):
        labels = table.pivot(index=key, columns="model", values=column)
        assert (labels["self"] == labels["lesionres"]).all(), column
