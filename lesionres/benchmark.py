"""``python -m lesionres benchmark ROOT``: any segmentation model under the resolution sweep.

Runs every model on the same scans under the same conditions and scores them into one table,
so that the report compares them condition by condition with paired tests:

1. every condition's images are written by ``degrade``'s code (the very images ``test`` feeds
   lesionres's own model), once per layout: ``OUT/images-<layout>/<condition>/...``;
2. each predictor's command runs once per condition, ``{input}`` replaced by that condition's
   image folder and ``{output}`` by an empty folder ``OUT/predictions/<name>/<condition>/``,
   its output streamed to ``OUT/logs/<name>/<condition>.log``;
3. its masks are scored by ``score``'s code (:func:`lesionres.scoring.score_condition`: same
   metrics and conventions, on the ground truth's grid, a missing prediction an error row) into
   ``OUT/results.csv`` with the predictor's name in the ``model`` column; ``--ckpt_path`` adds
   lesionres's own model through ``test`` on the same scans and conditions;
4. ``analyze`` writes ``OUT/report/``: models compared per condition, Dice against resolution
   with one curve per model.

Resumable and honest: a command that fails leaves its log and gets error rows for that
condition, and the run goes on; a rerun skips conditions whose command finished
(``OUT/logs/<name>/<condition>.done.json``) and scores only the rows still missing. Outputs that
match no input scan, masks that are not binary (unless ``--binarize``) or lie on another grid
than their input are named in one line each, with the predictor and the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from lesionres.conditions import Condition
from lesionres.data.layouts import SubjectRecord
from lesionres.degrade import (
    Layout,
    degrade_dataset,
)
from lesionres.errors import LesionresError
from lesionres.files import write_json
from lesionres.results import read_rows
from lesionres.scoring import (
    NO_PREDICTION,
    Matching,
    ScoreSettings,
    match_masks,
    score_condition,
)

__all__ = [
    "BenchmarkRun",
    "Predictor",
    "parse_predictors",
    "report",
    "run_command",
    "run_condition",
    "test_own_model",
    "test_subjects",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SHOWN = 3  # problem lines printed per (predictor, condition); all of them are in the table


@dataclass(frozen=True)
class Predictor:
    """A segmentation tool run from the command line.

    Attributes:
        name: Its ``model`` label in the results (also a folder name).
        command: Shell command with ``{input}`` (a folder of images) and ``{output}`` (an empty
            folder for its masks).
        layout: How its input images are named: ``folder`` (``images/<id>.nii.gz``) or
            ``nnunet`` (``imagesTs/<id>_0000.nii.gz``).
    """

    name: str
    command: str
    layout: Layout = "folder"

    def render(self, input_dir: Path, output_dir: Path) -> str:
        """The command for one condition, paths quoted for the shell."""
        return self.command.replace("{input}", shlex.quote(str(input_dir))).replace(
            "{output}", shlex.quote(str(output_dir))
        )


def _split_pair(text: str, option: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.fullmatch(name) or not value.strip():
        raise LesionresError(
            f"{option} {text!r}: expected NAME={what} (NAME of letters, digits, _ . -)"
        )
    return name, value.strip()


def parse_predictors(
    specs: list[str], layouts: list[str] | None = None, reserved: str | None = None
) -> list[Predictor]:
    """``--predictor NAME=CMD`` and ``--layout [NAME=]folder|nnunet`` options as predictors.

    A bare ``--layout nnunet`` applies to every predictor without one of its own.

    Raises:
        LesionresError: a malformed option, a name given twice or equal to ``reserved`` (the
            name of lesionres's own model), a command without ``{input}`` and ``{output}``, or
            a layout for an unknown predictor.
    """
    commands: dict[str, str] = {}
    for spec in specs:
        name, command = _split_pair(spec, "--predictor", "COMMAND")
        if name in commands or name == reserved:
            why = "given twice" if name in commands else "the name of lesionres's own model"
            raise LesionresError(f"--predictor {name}: {why}; give each model its own name")
        missing = [key for key in ("{input}", "{output}") if key not in command]
        if missing:
            raise LesionresError(
                f"--predictor {name}: the command has no {' or '.join(missing)} (replaced by the "
                "condition's image folder and an empty folder for the masks)"
            )
        commands[name] = command
    default, chosen = "folder", {}
    for spec in layouts or []:
        name, _, value = spec.rpartition("=")
        if value not in ("folder", "nnunet"):
            raise LesionresError(f"--layout {spec!r}: expected [NAME=]folder or [NAME=]nnunet")
        if not name:
            default = value
        elif name not in commands:
            raise LesionresError(f"--layout {spec!r}: no --predictor named {name!r}")
        else:
            chosen[name] = value
    return [Predictor(n, c, chosen.get(n, default)) for n, c in commands.items()]  # type: ignore[arg-type]


def run_command(command: str, log: Path) -> int:
    """Run ``command`` in a shell, stdout and stderr streamed to ``log``; its exit status.

    Interrupted (Ctrl-C), the command's whole process group is stopped too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        handle.write(f"$ {command}\n")
        handle.flush()
        process = subprocess.Popen(
            command, shell=True, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            return process.wait()
        except BaseException:  # Ctrl-C, SIGTERM: leave no predictor running behind us
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()[1:]]
    lines = [line for line in lines if line]
    return lines[-1][-200:] if lines else "(no output)"


def test_subjects(records: list[SubjectRecord], split_file: Path | None) -> list[SubjectRecord]:
    """All records, or those of the split file's ``test`` list (every one must be found)."""
    if split_file is None:
        return records
    try:
        wanted = list(json.loads(split_file.read_text())["test"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LesionresError(
            f"{split_file}: not a split file with a 'test' list ({type(error).__name__})"
        ) from None
    by_id = {r.subject_id: r for r in records}
    absent = [s for s in wanted if s not in by_id]
    if absent:
        raise LesionresError(
            f"{split_file}: {len(absent)} test subject(s) not found in the dataset (first: "
            f"{absent[0]}); is ROOT the dataset the split was made on?"
        )
    if not wanted:
        raise LesionresError(f"{split_file}: the 'test' list is empty")
    return [by_id[s] for s in wanted]


@dataclass
class BenchmarkRun:
    """Everything one benchmark run shares between its steps."""

    out: Path
    records: list[SubjectRecord]
    conditions: list[Condition]
    grid: str
    settings: ScoreSettings
    scans: dict[str, str]  # modality and space of the images, as test records them
    bar: tqdm

    @property
    def table(self) -> Path:
        return self.out / "results.csv"

    @property
    def truths(self) -> dict[str, Path]:
        return {r.subject_id: r.mask for r in self.records}  # type: ignore[misc]

    def images(self, layout: Layout) -> dict[str, dict[str, dict]]:
        """Condition -> subject -> manifest row, writing the images of ``layout`` if needed."""
        rows = degrade_dataset(
            self.records, self.conditions, self.out / f"images-{layout}", self.grid, layout,  # type: ignore[arg-type]
            progress=not self.bar.disable,
        )  # fmt: skip
        found: dict[str, dict[str, dict]] = {}
        for row in rows:
            found.setdefault(row["condition"], {})[row["subject_id"]] = row
        return found

    def labels(self, manifest: dict[str, dict]) -> dict[str, dict]:
        """Subject -> the row columns ``test`` writes besides the metrics."""
        by_id = {r.subject_id: r for r in self.records}
        keys = ("method", "factor", "spacing_mm", "effective_fwhm_mm")
        return {
            s: {"dataset": by_id[s].dataset, "cohort": by_id[s].cohort, **self.scans,
                **{k: row[k] for k in keys}}
            for s, row in manifest.items()
        }  # fmt: skip

    def say(self, text: str) -> None:
        self.bar.write(text)


def run_condition(run: BenchmarkRun, predictor: Predictor, condition: str, manifest: dict) -> None:
    """One predictor on one condition: run it (unless done before), score its masks."""
    name = predictor.name
    output = run.out / "predictions" / name / condition
    log = run.out / "logs" / name / f"{condition}.log"
    marker = log.parent / f"{condition}.done.json"
    inputs = {s: Path(row["image"]) for s, row in manifest.items()}
    command = predictor.render(next(iter(inputs.values())).parent, output)
    if marker.exists():
        before = json.loads(marker.read_text()).get("command")
        if before != command:
            raise LesionresError(
                f"{marker}: {name} ran on {condition} with another command ({before!r}); give "
                "the new command another name, or use another --out folder"
            )
    else:
        if output.exists():  # a run cut short: its outputs may be incomplete
            shutil.rmtree(output)
        output.mkdir(parents=True)
        status = run_command(command, log)
        if status != 0:
            failure = f"{name} failed on {condition} (exit status {status}); log: {log}"
            run.say(f"warning: {failure}; last line: {_last_line(log)}")
            failed = Matching(dict(run.truths), problems=dict.fromkeys(run.truths, failure))
            score_condition(run.table, failed, run.labels(manifest), condition, name,
                            run.settings, progress=False)  # fmt: skip
            return
        write_json(marker, {"command": command, "log": str(log)})
    matching = match_masks(output, run.truths)
    outcome = score_condition(
        run.table, matching, run.labels(manifest), condition, name, run.settings, inputs,
        progress=False,
    )  # fmt: skip
    where = f"warning: {name} on {condition}"
    if matching.unmatched:
        examples = ", ".join(str(p) for p in matching.unmatched[:_SHOWN])
        run.say(
            f"{where}: {len(matching.unmatched)} output file(s) match no input scan by name "
            f"(e.g. {examples}); expected names like {next(iter(run.truths))}.nii.gz"
        )
    missing = [s for s, e in outcome.errors.items() if e == NO_PREDICTION]
    if missing:
        run.say(f"{where}: no mask for {len(missing)} scan(s) (error rows), e.g. {missing[0]}")
    problems = [e for e in outcome.errors.values() if e != NO_PREDICTION]
    for error in problems[:_SHOWN]:
        run.say(f"{where}: {error}")
    if len(problems) > _SHOWN:
        run.say(f"{where}: {len(problems) - _SHOWN} more such rows in {run.table}")


def test_own_model(
    run: BenchmarkRun,
    kind: str,
    root: Path,
    checkpoint: Path,
    name: str,
    config: Path | None = None,
    register: str = "none",
    modality: str | None = None,
) -> None:
    """lesionres's own model (``checkpoint``, rows labelled ``name``) through ``test``, on the
    same scans and conditions as the other models."""
    from lesionres.lightning_cli import run_lightning
    from lesionres.study import run_overrides

    wanted = {(r.subject_id, c.name) for r in run.records for c in run.conditions}
    have = {(r["subject_id"], r["condition"]) for r in read_rows(run.table)
            if r.get("model", "") == name}  # fmt: skip
    if wanted <= have:
        return  # every row is there: test would only re-read every scan to skip them
    split = run.out / "split.json"  # the benchmark's scans, all of them `test`'s test split
    write_json(split, {"train": [], "val": [], "test": [r.subject_id for r in run.records]})
    conditions = json.dumps([dataclasses.asdict(c) for c in run.conditions])
    run_lightning(
        [
            "test",
            *(["--config", str(config)] if config else []),
            "--ckpt_path", str(checkpoint),
            "--data.dataset", kind,
            "--data.root", str(root),
            "--data.split_file", str(split),
            "--data.conditions", conditions,
            "--data.external", "[]",
            "--data.binarize", run.settings.binarize,
            "--data.register", register,
            *(["--data.modality", modality] if modality else []),
            "--model.connectivity", str(run.settings.connectivity),
            "--model.empty_convention", run.settings.empty,
            "--model.hd95", run.settings.hd95,
            *run_overrides(run.out, "test"),
            "--trainer.enable_progress_bar", "false",
            "--results.path", str(run.table),
            "--results.model", name,
        ]
    )  # fmt: skip


def report(run: BenchmarkRun, no_figures: bool) -> int:
    """Analyze the table into ``OUT/report``; 1 (and a warning) when the analysis fails: the
    table stays whatever happens to the analysis."""
    from lesionres.analysis import analyze

    rows = read_rows(run.table)
    failed = sum(bool(r["error"]) for r in rows)
    print(f"Results: {run.table} ({len(rows)} rows, {failed} failed)")
    command = [str(run.table), "--out", str(run.out / "report"), "--partial", "intersect"]
    if no_figures:
        command.append("--no-figures")
    try:
        written = analyze(
            run.table, run.out / "report", partial="intersect", make_figures=not no_figures
        )
        print(f"wrote {written}")
    except LesionresError as error:
        print(f"warning: analysis failed: {error}\n"
              f"rerun it with: python -m lesionres analyze {' '.join(command)}")  # fmt: skip
        return 1
    return 0
