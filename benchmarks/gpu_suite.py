"""The GPU numbers every user will ask for, measured in one prepared run (issue 20).

One command measures every performance target of DESIGN.md on one GPU, in about 8 minutes at
most, each part in its own process under its own time budget (a part that fails, runs out of
memory or hangs loses only its own numbers):

1. ``train_step``: training step (forward + BCE + backward + Adam) and inference of our
   ``UNet3D`` (base 16, depth 4, as ``paper.yaml``) against MONAI
   ``BasicUNet(16, 32, 64, 128, 256, 16)`` in the same process, on one 1x1x208x240x192 volume:
   fp32, bf16 autocast, bf16 + channels_last_3d, bf16 + ``torch.compile``; median ms, peak
   memory, ratio ours vs BasicUNet (``bench_train_step.py``).
2. ``loader``: lesionres' ``.npy``-cached loader against a TorchIO ``.nii.gz`` pipeline, 15, 8
   and 0 workers, volumes/s, on synthetic 197x233x189 volumes (``bench_loader.py``).
3. ``fit``: a real ``Trainer.fit`` of a few epochs on synthetic 1 mm data at the study's shape
   (``paper.yaml``: 208x240x192, base 16, BCE, batch 1, ``bf16-mixed``, 8 workers) with its
   data-wait share (``bench_fit.py``).
4. ``test``: ``Trainer.test`` of that model under the study's 4 conditions with every metric:
   scans x conditions per minute (``bench_fit.run_test``).
5. ``projection``: the study's 400 training scans x 50 epochs (+ 100 validation scans per
   epoch) from the fit's step time and data-wait share, and from the bare bf16 step of part 1.

Every measurement is one JSON object per line, appended (and flushed) to
``OUT/gpu_suite.jsonl`` as it is produced, with a ``part`` field; each part adds a
``part_<name>`` line with its status (``ok``, ``error``, ``timeout``), seconds and budget. At the
end a short table with a PASS/FAIL per target is printed and written to ``OUT/summary.md``.

``--quick`` runs the same parts at tiny sizes (32^3 volumes, a few steps, 4 mm data, 0 and 1
workers) in under about a minute on a 2-core CPU: a smoke test of the suite, not a measurement.

Run: ``bash benchmarks/gpu_suite.sh OUT`` on the GPU machine (installs carried wheels first), or
``python benchmarks/gpu_suite.py --out OUT [--quick] [--device auto|cpu|cuda] [--parts ...]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch
from _common import ATLAS_SHAPE, emit, error_text, set_sink, set_threads

__all__ = ["PARTS", "Part", "main", "summarize", "targets"]


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of the suite: what it measures and its time budgets (seconds)."""

    name: str
    budget_s: float  # on the GPU (the budgets add up to under 8 minutes)
    quick_budget_s: float  # with --quick
    what: str


#: in run order; the sum of ``budget_s`` (460 s) leaves the parent 20 s of the 8 minutes
PARTS = (
    Part("train_step", 210, 45, "training step and inference, ours vs MONAI BasicUNet"),
    Part("loader", 75, 30, "cached loader vs TorchIO .nii.gz, volumes/s"),
    Part("fit", 100, 60, "a real fit on synthetic data, data-wait share"),
    Part("test", 75, 45, "test under the study's 4 conditions, all metrics"),
    Part("projection", 5, 5, "the study's 400 x 50 epochs from the measured step"),
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each part runs: the study's sizes on a GPU, tiny ones with ``--quick``."""

    shape: tuple[int, int, int]  # training-step volume
    steps: int
    warmup: int
    compile_needs_s: float  # time that must be left to start compiling one model
    loader_shape: tuple[int, int, int]
    loader_grid: tuple[int, int, int]
    loader_volumes: int
    loader_distinct: int
    loader_workers: tuple[int, ...]  # the most telling first: a cut budget skips the last
    fit_subjects: int
    fit_epochs: int
    fit_workers: int
    test_fraction: float


FULL = Sizes(
    shape=(208, 240, 192), steps=8, warmup=3, compile_needs_s=60,
    loader_shape=ATLAS_SHAPE, loader_grid=(208, 240, 192), loader_volumes=30, loader_distinct=4,
    loader_workers=(15, 8, 0),
    fit_subjects=24, fit_epochs=4, fit_workers=8, test_fraction=0.25,  # paper.yaml: 8 workers
)
QUICK = Sizes(
    shape=(32, 32, 32), steps=1, warmup=1, compile_needs_s=0,
    loader_shape=(40, 48, 40), loader_grid=(48, 48, 48), loader_volumes=4, loader_distinct=2,
    loader_workers=(1, 0),
    fit_subjects=8, fit_epochs=2, fit_workers=1, test_fraction=0.25,
)


@dataclasses.dataclass(frozen=True)
class Context:
    """What a part needs: the device, the sizes, a scratch folder and its deadline."""

    device: torch.device
    quick: bool
    sizes: Sizes
    work: Path  # shared by the parts (the fit's data and weights serve the test)
    out: Path
    deadline: float  # time.monotonic() after which a part skips what is left

    @property
    def precision(self) -> str:
        from bench_fit import default_precision

        return default_precision(self.device)

    def datamodule(self):
        """The fit's and the test's data: same folder, same split (study's 4 conditions)."""
        from bench_fit import make_datamodule

        return make_datamodule(
            self.work / "synthetic", self.work / "cache", quick=self.quick,
            subjects=self.sizes.fit_subjects, workers=self.sizes.fit_workers,
            test_fraction=self.sizes.test_fraction, condition_preset="study",
        )


# ---------------------------------------------------------------------------------- parts
def part_train_step(ctx: Context) -> None:
    """Part 1: ours vs BasicUNet, every variant (``bench_train_step.run``)."""
    import bench_train_step

    variants = bench_train_step.select_variants(
        list(bench_train_step.VARIANTS), ctx.device, ctx.quick
    )
    bench_train_step.run(
        ctx.device, ctx.sizes.shape, variants, ctx.sizes.steps, ctx.sizes.warmup,
        note="--quick: 32^3 instead of the study's 208x240x192" if ctx.quick else "",
        deadline=ctx.deadline, compile_needs_s=ctx.sizes.compile_needs_s,
    )


def part_loader(ctx: Context) -> None:
    """Part 2: cached loader vs TorchIO per worker count (``bench_loader.run``)."""
    import bench_loader

    sizes = ctx.sizes
    bench_loader.run(
        ctx.device, sizes.loader_volumes, sizes.loader_workers, passes=2,
        shape=sizes.loader_shape, grid=sizes.loader_grid, distinct=sizes.loader_distinct,
        tmp=str(ctx.work), deadline=ctx.deadline,
    )


def _weights(ctx: Context) -> Path:
    return ctx.work / "fit-weights.pt"


def part_fit(ctx: Context) -> None:
    """Part 3: a real fit with its data-wait share (``bench_fit.run_fit``); keeps the weights
    for the test part."""
    from bench_fit import prepare, run_fit

    datamodule = ctx.datamodule()
    prepare(datamodule, ctx.device)
    folder = ctx.work / "fit"
    folder.mkdir(exist_ok=True)
    fit = run_fit(
        ctx.device, datamodule, folder, quick=ctx.quick, epochs=ctx.sizes.fit_epochs,
        precision=ctx.precision,
    )
    torch.save(fit["model"].state_dict(), _weights(ctx))


def part_test(ctx: Context) -> None:
    """Part 4: test throughput with all metrics (``bench_fit.run_test``), with the fit's
    weights when the fit part left them (the time barely depends on them)."""
    from bench_fit import prepare, run_test, study_setup

    from lesionres.module import LesionSegmenter

    datamodule = ctx.datamodule()
    prepare(datamodule, ctx.device)  # reused when the fit part generated it
    _, _, base, depth = study_setup(ctx.quick)
    model = LesionSegmenter(base_channels=base, depth=depth, norm="instance", loss="bce")
    weights = "untrained (the fit part left none)"
    if _weights(ctx).exists():
        model.load_state_dict(torch.load(_weights(ctx), map_location="cpu"))
        weights = "from the fit part"
    folder = ctx.work / "test"
    folder.mkdir(exist_ok=True)
    run_test(ctx.device, datamodule, model, folder, ctx.precision, ctx.quick, weights=weights)


def part_projection(ctx: Context) -> None:
    """Part 5: the study's time from what parts 1 and 3 measured (no new measurement)."""
    from bench_fit import project_study

    records = read_records(ctx.out / JSONL)
    fit = {name: _value(records, name) for name in (
        "step_compute", "data_wait_share", "validation_volume"
    )}
    if any(v is None for v in fit.values()):
        raise RuntimeError(f"the fit part measured no step, data wait or validation: {fit}")
    quick_note = "; --quick: small volumes, not the study's" if ctx.quick else ""
    project_study(
        ctx.device, fit["step_compute"], fit["data_wait_share"], fit["validation_volume"],
        basis="fit: Lightning step + the fit's data-wait share" + quick_note,
        full=not ctx.quick, source="fit",
    )
    bf16 = _best(records, "train_step_ours_bf16")
    if bf16 is not None:
        project_study(
            ctx.device, bf16[0], fit["data_wait_share"], fit["validation_volume"],
            basis=f"bare step of train_step ({bf16[1]}) + the fit's data-wait share" + quick_note,
            full=not ctx.quick, source="train_step",
        )


PART_FUNCTIONS: dict[str, Callable[[Context], None]] = {
    "train_step": part_train_step,
    "loader": part_loader,
    "fit": part_fit,
    "test": part_test,
    "projection": part_projection,
}

# ------------------------------------------------------------------------------- records
JSONL = "gpu_suite.jsonl"


def read_records(path: Path) -> list[dict]:
    """The JSON lines of ``path`` (a line cut short by a killed process is skipped)."""
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _find(records: list[dict], name: str, **fields: object) -> dict | None:
    """The last measured (not skipped, not failed) record of ``name`` matching ``fields``."""
    for record in reversed(records):
        if (
            record.get("name") == name
            and record.get("value") is not None
            and all(record.get(k) == v for k, v in fields.items())
        ):
            return record
    return None


def _value(records: list[dict], name: str, **fields: object) -> float | None:
    record = _find(records, name, **fields)
    return None if record is None else float(record["value"])


def _best(records: list[dict], prefix: str) -> tuple[float, str] | None:
    """Smallest value among measured records whose name starts with ``prefix``."""
    found = [
        (float(r["value"]), r["name"]) for r in records
        if r.get("name", "").startswith(prefix) and r.get("value") is not None
    ]
    return min(found) if found else None


# ------------------------------------------------------------------------------- summary
def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}{unit}"


def _workers(count: int) -> str:
    return f"{count} worker{'' if count == 1 else 's'}"


def _percent(share: float | None) -> str:
    return _fmt(None if share is None else 100 * share, " %", 2)


def summarize(records: list[dict]) -> list[tuple[str, str, str, str, str]]:
    """Rows ``(part, measurement, lesionres, baseline, ratio)`` of the summary table."""
    rows = []
    for variant in ("fp32", "bf16", "bf16_cl", "bf16_compile"):
        for kind, label in (("train_step", "train step"), ("infer", "inference")):
            ours = _find(records, f"{kind}_ours_{variant}")
            monai = _find(records, f"{kind}_monai_{variant}")
            if ours is None and monai is None:
                continue

            def cell(record: dict | None) -> str:
                if record is None:
                    return "—"
                memory = f" ({record['peak_mem_gib']:.1f} GiB)" if "peak_mem_gib" in record else ""
                return f"{record['value']:.1f} ms{memory}"

            ratio = monai["value"] / ours["value"] if ours and monai else None
            rows.append((
                "train_step", f"{label} {variant}", cell(ours), "BasicUNet " + cell(monai),
                _fmt(ratio, "x", 2),
            ))
    for record in records:
        if record.get("name") == "loader_speedup" and record.get("value") is not None:
            rows.append((
                "loader", f"volumes/s, {_workers(record['workers'])}",
                _fmt(record["lesionres_volumes_per_s"], " vol/s"),
                "TorchIO " + _fmt(record["torchio_volumes_per_s"], " vol/s"),
                _fmt(record["value"], "x", 2),
            ))
    share = _value(records, "data_wait_share")
    for part, label, value in (
        ("fit", "step (compute, in Lightning)", _fmt(_value(records, "step_compute"), " ms")),
        ("fit", "data wait per step", _fmt(_value(records, "data_wait"), " ms", 2)),
        ("fit", "data-wait share", _percent(share)),
        ("fit", "validation per volume", _fmt(_value(records, "validation_volume"), " ms")),
        ("test", "scans x conditions per minute", _fmt(_value(records, "test_throughput"))),
        ("test", "155 scans x 4 conditions",
         _fmt(_value(records, "projected_test_155x4"), " min", 2)),
    ):
        rows.append((part, label, value, "", ""))
    for source in ("fit", "train_step"):
        for name, label in (("projected_study", ""), ("projected_study_with_validation", " + val")):
            value = _value(records, name, source=source)
            if value is not None:
                rows.append(("projection", f"400 x 50 epochs{label} ({source} step)",
                             _fmt(value, " min"), "", ""))
    return rows


def step_limit_ms(device_name: str) -> float | None:
    """The target for our bf16 step on this card: 60 ms on an H200, 80 ms on an H100."""
    if "H200" in device_name:
        return 60.0
    if "H100" in device_name:
        return 80.0
    return None


def targets(records: list[dict], gpu: bool) -> list[tuple[str, str, str]]:
    """Rows ``(target, measured, verdict)``; verdicts PASS / FAIL, MISSING (the part did not
    measure it) or ``n/a`` (not a GPU measurement at the study's size, or no target for this
    card)."""
    def verdict(ok: bool | None) -> str:
        if ok is None:
            return "MISSING"
        return ("PASS" if ok else "FAIL") if gpu else "n/a (not a GPU measurement)"

    rows = []
    ours = _best(records, "train_step_ours_bf16")
    monai = _best(records, "train_step_monai_")
    ratio = monai[0] / ours[0] if ours and monai else None
    ours_ms, monai_ms = _fmt(ours and ours[0], " ms"), _fmt(monai and monai[0], " ms")
    rows.append((
        "our bf16 step >= 3x faster than BasicUNet's best",
        f"{_fmt(ratio, 'x', 2)} ({ours_ms} vs {monai_ms})",
        verdict(None if ratio is None else ratio >= 3),
    ))
    names = [r.get("device_name", "") for r in records if r.get("name") == "environment"]
    limit = step_limit_ms(names[-1] if names else "")
    if ours is not None and gpu and limit is None:
        step_verdict = "n/a (no target for this card)"
    else:
        step_verdict = verdict(None if ours is None else ours[0] <= (limit or 60.0))
    rows.append((
        f"our bf16 step <= {_fmt(limit, ' ms', 0) if limit else '60 ms (H200) / 80 ms (H100)'}",
        _fmt(ours and ours[0], " ms"), step_verdict,
    ))
    share = _value(records, "data_wait_share")
    rows.append(("data wait < 5 % of the step", _percent(share),
                 verdict(None if share is None else share < 0.05)))
    for name, label in (("projected_study", ""), ("projected_study_with_validation", " (+ val)")):
        minutes = _value(records, name, source="fit")
        rows.append((f"400 scans x 50 epochs{label} < 30 min", _fmt(minutes, " min"),
                     verdict(None if minutes is None else minutes < 30)))
    test = _value(records, "projected_test_155x4")
    rows.append(("155 scans x 4 conditions, all metrics < 2 min", _fmt(test, " min", 2),
                 verdict(None if test is None else test < 2)))
    speedups = [r for r in records if r.get("name") == "loader_speedup" and r.get("value")]
    top = max(speedups, key=lambda r: r["workers"], default=None)
    rows.append((
        "cached loader >= 10x TorchIO (most workers)",
        f"{_fmt(top['value'], 'x', 2)} ({_workers(top['workers'])})" if top else "—",
        verdict(None if top is None else top["value"] >= 10),
    ))
    return rows


def render(records: list[dict], gpu: bool, quick: bool) -> str:
    """The summary as Markdown: environment, parts, measurements, targets."""
    env = _find(records, "environment") or {}
    lines = [
        f"# gpu_suite summary{' (--quick: a smoke test, not a measurement)' if quick else ''}",
        "",
        f"{env.get('device_name', '?')}; torch {env.get('torch', '?')}, CUDA "
        f"{env.get('cuda', '—')}, cuDNN {env.get('cudnn', '—')}; {env.get('when', '')}",
        "",
        "| part | status | seconds | budget s |",
        "|---|---|---|---|",
    ]
    for record in records:
        if record.get("name", "").startswith("part_"):
            lines.append(
                f"| {record['part']} | {record['status']} | {record['value']:.1f} | "
                f"{record['budget_s']:.0f} |"
            )
    lines += ["", "| part | measurement | lesionres | baseline (same run) | ratio |",
              "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in summarize(records)]
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in targets(records, gpu)]
    errors = [r for r in records if r.get("error")]
    if errors:
        lines += ["", "Errors:"]
        lines += [f"- {r.get('part', '?')}: {r['name']}: {r['error']}" for r in errors]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- processes
def _environment(device: torch.device) -> None:
    """The first line: versions and hardware, so every number can be traced to its setup."""
    versions = {}
    for package in ("pytorch-lightning", "torchmetrics", "torchio", "monai", "nibabel", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    emit(
        "environment", float(os.cpu_count() or 0), "cpu cores", device=device, shape=None,
        cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if device.type == "cuda"
        else None, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        python=sys.version.split()[0], packages=versions,
    )


def _run_child(part: Part, budget: float, argv: list[str]) -> tuple[str, float, int | None]:
    """Run ``part`` in its own process (and process group) under ``budget`` seconds.

    Returns:
        ``(status, seconds, return code)``; on timeout the whole group (loader workers
        included) is killed.
    """
    command = [sys.executable, __file__, "--part", part.name, "--budget", str(budget), *argv]
    start = time.monotonic()
    process = subprocess.Popen(command, start_new_session=True)
    try:
        code = process.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "timeout", time.monotonic() - start, None
    except BaseException:  # Ctrl-C: the child has its own session, so it must be ended here
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return ("ok" if code == 0 else "error"), time.monotonic() - start, code


def run_part(name: str, ctx: Context) -> int:
    """In a part's process: run it, turning an exception into an ``error`` line."""
    set_sink(ctx.out / JSONL, part=name)
    set_threads(None, ctx.quick, ctx.device)
    try:
        PART_FUNCTIONS[name](ctx)
    except Exception as error:  # noqa: BLE001 - record it; the other parts go on
        traceback.print_exc()
        emit(
            f"{name}_failed", float("nan"), "", device=ctx.device, shape=None,
            error=error_text(error),
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the parts (or, with ``--part``, one of them in this process); returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_suite.jsonl and summary.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke test")
    parser.add_argument("--device", default="auto", help="auto (cuda if there), cuda or cpu")
    parser.add_argument(
        "--parts", nargs="+", choices=[p.name for p in PARTS], default=[p.name for p in PARTS],
        help="run only these parts (default: all)",
    )
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)  # set for the parts
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    from _common import resolve_device

    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if args.quick else FULL

    def context(work: Path, budget: float) -> Context:
        # a part stops starting new measurements 10 % before it would be killed
        return Context(device, args.quick, sizes, work, out, time.monotonic() + 0.9 * budget)

    if args.part:
        return run_part(args.part, context(Path(args.work), args.budget or math.inf))

    (out / JSONL).unlink(missing_ok=True)
    set_sink(out / JSONL, part="environment")
    _environment(device)
    work = Path(tempfile.mkdtemp(prefix="gpu-suite-"))
    child_argv = ["--out", str(out), "--work", str(work), "--device", args.device]
    child_argv += ["--quick"] if args.quick else []
    try:
        for part in PARTS:
            if part.name not in args.parts:
                continue
            budget = part.quick_budget_s if args.quick else part.budget_s
            print(f"== gpu_suite: {part.name} ({part.what}), budget {budget:.0f} s",
                  file=sys.stderr, flush=True)
            if part.name == "projection":  # arithmetic on the records: no process needed
                start = time.monotonic()
                code = run_part(part.name, context(work, budget))
                status, seconds = ("ok" if code == 0 else "error"), time.monotonic() - start
            else:
                status, seconds, code = _run_child(part, budget, child_argv)
            set_sink(out / JSONL, part=part.name)
            emit(f"part_{part.name}", seconds, "s", device=device, shape=None, status=status,
                 budget_s=budget, returncode=code)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        set_sink(None)
    summary = render(read_records(out / JSONL), gpu=device.type == "cuda" and not args.quick,
                     quick=args.quick)
    (out / "summary.md").write_text(summary)
    print("\n" + summary, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
