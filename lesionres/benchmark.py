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

import argparse
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
from lesionres.data.layouts import SubjectRecord, describe_scans
from lesionres.data.split import write_json
from lesionres.degrade import (
    Layout,
    add_dataset_arguments,
    choose_conditions,
    degrade_dataset,
    find_dataset,
    read_data_config,
)
from lesionres.errors import LesionresError
from lesionres.results import read_rows
from lesionres.scoring import (
    NO_PREDICTION,
    Matching,
    ScoreSettings,
    match_masks,
    score_condition,
)

__all__ = ["Predictor", "benchmark_main", "build_parser", "parse_predictors", "run_command"]

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


def _test_subjects(records: list[SubjectRecord], split_file: Path | None) -> list[SubjectRecord]:
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
class _Run:
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


def _run_condition(run: _Run, predictor: Predictor, condition: str, manifest: dict) -> None:
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


def _test_own_model(run: _Run, args: argparse.Namespace, kind: str, root: Path) -> None:
    """lesionres's own model through ``test``, on the same scans and conditions."""
    from lesionres.cli import main
    from lesionres.study import _run_overrides

    wanted = {(r.subject_id, c.name) for r in run.records for c in run.conditions}
    have = {(r["subject_id"], r["condition"]) for r in read_rows(run.table)
            if r.get("model", "") == args.ckpt_name}  # fmt: skip
    if wanted <= have:
        return  # every row is there: test would only re-read every scan to skip them
    split = run.out / "split.json"  # the benchmark's scans, all of them `test`'s test split
    write_json(split, {"train": [], "val": [], "test": [r.subject_id for r in run.records]})
    conditions = json.dumps([dataclasses.asdict(c) for c in run.conditions])
    main(
        [
            "test",
            *(["--config", str(args.config)] if args.config else []),
            "--ckpt_path", str(args.ckpt_path),
            "--data.dataset", kind,
            "--data.root", str(root),
            "--data.split_file", str(split),
            "--data.conditions", conditions,
            "--data.external", "[]",
            "--data.binarize", run.settings.binarize,
            *(["--data.modality", args.modality] if args.modality else []),
            "--model.connectivity", str(run.settings.connectivity),
            "--model.empty_convention", run.settings.empty,
            "--model.hd95", run.settings.hd95,
            *_run_overrides(run.out, "test"),
            "--trainer.enable_progress_bar", "false",
            "--results.path", str(run.table),
            "--results.model", args.ckpt_name,
        ]
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``benchmark`` command line."""
    parser = argparse.ArgumentParser(
        prog="lesionres benchmark",
        description=__doc__.split("\n\n")[0],
        epilog="Example: lesionres benchmark /data/ATLAS_2 --dataset atlas --predictor "
        "nnunet='nnUNetv2_predict -i {input} -o {output} -d 501 -c 3d_fullres' --layout "
        "nnunet=nnunet --ckpt_path best.ckpt --split_file run/split.json --out bench/",
    )
    add_dataset_arguments(parser)
    parser.add_argument("--predictor", action="append", default=[], metavar="NAME=COMMAND",
                        help="a model run from the command line; {input}: the condition's image "
                        "folder, {output}: an empty folder for its masks (repeat per model)")
    parser.add_argument("--layout", action="append", default=[], metavar="[NAME=]LAYOUT",
                        help="input naming per predictor: folder (images/<id>.nii.gz, default) "
                        "or nnunet (imagesTs/<id>_0000.nii.gz); a bare value applies to all")
    parser.add_argument("--ckpt_path", type=Path, default=None,
                        help="also test lesionres's own model (a checkpoint of fit)")
    parser.add_argument("--ckpt_name", default="lesionres",
                        help="model label of --ckpt_path's rows (default: lesionres)")
    parser.add_argument("--split_file", type=Path, default=None,
                        help="evaluate only the 'test' subjects of this split (e.g. a run's "
                        "split.json); default: every scan under ROOT")
    parser.add_argument("--binarize", choices=("strict", "nonzero", "half"), default="strict",
                        help="how predicted masks are read: strict (0/1 only, default), nonzero "
                        "(label maps: > 0) or half (probability maps: >= half the maximum)")
    parser.add_argument("--gt_binarize", choices=("strict", "nonzero", "half"), default=None,
                        help="how ground-truth mask values are read, for every model (default: "
                        "the config's data.binarize, else strict)")
    parser.add_argument("--missing", choices=("error", "empty"), default="error",
                        help="a scan without predicted mask: error row (default) or empty mask")
    parser.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=26)
    parser.add_argument("--empty", choices=("one", "nan"), default="one",
                        help="both masks empty: Dice 1 (challenge code) or NaN")
    parser.add_argument("--hd95", choices=("pooled", "max"), default="pooled")
    parser.add_argument("--no-figures", action="store_true", help="report without figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser  # fmt: skip


def benchmark_main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``benchmark``."""
    args = build_parser().parse_args(argv)
    reserved = args.ckpt_name if args.ckpt_path else None
    predictors = parse_predictors(args.predictor, args.layout, reserved)
    if not predictors and args.ckpt_path is None:
        raise LesionresError("benchmark: nothing to run; give --predictor NAME=COMMAND and/or "
                             "--ckpt_path CHECKPOINT")  # fmt: skip
    if args.ckpt_path is not None and not args.ckpt_path.is_file():
        raise LesionresError(f"{args.ckpt_path}: checkpoint file not found")
    data = read_data_config(args.config)
    conditions = choose_conditions(args, data)
    binarize = args.gt_binarize or data.get("binarize") or "strict"
    kind, root, records = find_dataset(args, data, binarize, require_masks=True)
    records = _test_subjects(records, args.split_file)
    if args.ckpt_path is not None and args.split_file is None:
        print("note: every scan under ROOT is evaluated, also any lesionres's model was trained "
              "on; --split_file RUN/split.json evaluates its test scans only")  # fmt: skip
    modality = args.modality or data.get("modality") or "dwi"
    declared = {"isles22": modality, "folder": data.get("folder_modality") or ""}.get(kind, "")
    settings = ScoreSettings(
        connectivity=args.connectivity, empty=args.empty, hd95=args.hd95, binarize=binarize,
        missing=args.missing, prediction_binarize=args.binarize,
    )  # fmt: skip
    steps = len(predictors) * len(conditions) + (args.ckpt_path is not None)
    print(f"Benchmark: {len(records)} scans x {len(conditions)} conditions, "
          f"{len(predictors) + (args.ckpt_path is not None)} model(s) -> {args.out}")  # fmt: skip
    with tqdm(total=steps, desc="benchmark", unit="run", disable=args.no_progress) as bar:
        run = _Run(args.out, records, conditions, args.grid, settings,
                   describe_scans(kind, declared), bar)  # fmt: skip
        manifests: dict[str, dict] = {}
        for predictor in predictors:
            if predictor.layout not in manifests:
                manifests[predictor.layout] = run.images(predictor.layout)
            for condition in conditions:
                bar.set_postfix_str(f"{predictor.name}: {condition.name}")
                _run_condition(run, predictor, condition.name,
                               manifests[predictor.layout][condition.name])  # fmt: skip
                bar.update()
        if args.ckpt_path is not None:
            bar.set_postfix_str(f"{args.ckpt_name}: test")
            _test_own_model(run, args, kind, root)
            bar.update()
    return _analyze(run, args.no_figures)


def _analyze(run: _Run, no_figures: bool) -> int:
    """The report of the table; the table stays whatever happens to the analysis."""
    from lesionres.analysis import analyze_main

    rows = read_rows(run.table)
    failed = sum(bool(r["error"]) for r in rows)
    print(f"Results: {run.table} ({len(rows)} rows, {failed} failed)")
    command = [str(run.table), "--out", str(run.out / "report"), "--partial", "intersect"]
    if no_figures:
        command.append("--no-figures")
    try:
        analyze_main(command)
    except LesionresError as error:
        print(f"warning: analysis failed: {error}\n"
              f"rerun it with: python -m lesionres analyze {' '.join(command)}")  # fmt: skip
        return 1
    return 0
