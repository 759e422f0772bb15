"""``python -m lesionres study``: fit, test under every condition, and analyze, in one run folder.

Layout of the run folder (``--out``, default ``runs/study-<date-time>``)::

    fit/            TensorBoard logs, config, split.json, checkpoints/ (best and last)
    test/           TensorBoard logs of the test run
    results.csv     one row per (scan, condition)
    predictions/    predicted masks per condition (NIfTI, on each mask's grid)
    report/         tables, figures and report.md

Every other option is passed to both ``fit`` and ``test`` (e.g. ``--config paper.yaml``,
``--data.root``, ``--trainer.max_epochs``). Rerunning with the same ``--out`` resumes: a
finished fit is reused, and ``test`` skips rows already in ``results.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lesionres.errors import LesionresError

__all__ = ["study_main"]


def _run_overrides(out: Path, version: str) -> list[str]:
    return [
        "--trainer.logger.class_path", "pytorch_lightning.loggers.TensorBoardLogger",
        "--trainer.logger.init_args.save_dir", str(out),
        "--trainer.logger.init_args.name", "",
        "--trainer.logger.init_args.version", version,
    ]


def _best_checkpoint(folder: Path) -> Path | None:
    best = sorted(folder.glob("best-*.ckpt"))
    return max(best, key=lambda p: float(p.stem.rsplit("-", 1)[1])) if best else None


def _data_root(run_config: Path) -> str | None:
    """The ``data.root`` the fit used (for the report's overlays of image, truth, prediction)."""
    import yaml

    if not run_config.exists():
        return None
    root = (yaml.safe_load(run_config.read_text()) or {}).get("data", {}).get("root")
    return root if root and Path(root).is_dir() else None


def study_main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``study``."""
    from lesionres.analysis import analyze
    from lesionres.cli import main

    parser = argparse.ArgumentParser(
        prog="lesionres study",
        description="fit, then test under every resolution condition, then analyze",
        epilog="Other options go to both fit and test, e.g. --config paper.yaml --data.root DIR.",
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/study-<time>)")
    parser.add_argument("--metric", default="dice", help="metric compared across conditions")
    args, passthrough = parser.parse_known_args(argv)
    out = args.out or Path("runs") / time.strftime("study-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    checkpoints = out / "fit" / "checkpoints"
    last = checkpoints / "last.ckpt"
    if (out / "fit" / "done").exists():
        print(f"Reusing the finished fit in {out / 'fit'}")
    else:
        resume = ["--ckpt_path", str(last)] if last.exists() else []
        main(["fit", *passthrough, *_run_overrides(out, "fit"), *resume])
        (out / "fit" / "done").touch()
    best = _best_checkpoint(checkpoints) or (last if last.exists() else None)
    if best is None:
        raise LesionresError(f"{checkpoints}: fit wrote no checkpoint")
    print(f"\nTesting {best}")
    main(
        [
            "test",
            *passthrough,
            *_run_overrides(out, "test"),
            "--ckpt_path", str(best),
            "--results.path", str(out / "results.csv"),
            "--results.save_predictions", "true",
        ]
    )
    report = analyze(
        out / "results.csv",
        out / "report",
        metric=args.metric,
        predictions_dir=out / "predictions",
        data_root=_data_root(out / "fit" / "config.yaml"),
    )
    minutes = (time.time() - started) / 60
    print(f"\nStudy finished in {minutes:.1f} min: {out}\nReport: {report}")
    return 0
