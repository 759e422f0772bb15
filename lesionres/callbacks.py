"""Callbacks that keep a user's work safe."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

__all__ = ["SaveLast", "SaveOnInterrupt", "find_last_checkpoint"]


class SaveLast(ModelCheckpoint):
    """Write ``last.ckpt`` (into the run's checkpoint folder) after every validation.

    Lightning 2.6's ``save_last`` writes only in epochs that also save a top-k checkpoint, so
    beside a best-only checkpoint ``last.ckpt`` was a copy of the best one, and resuming from it
    went back to the best epoch instead of the last.
    """

    def __init__(self) -> None:
        super().__init__(filename="last", monitor=None, save_top_k=1, enable_version_counter=False)


class SaveOnInterrupt(pl.Callback):
    """On Ctrl-C or SIGTERM during ``fit``, write ``last.ckpt`` so ``--ckpt_path last`` resumes.

    Lightning stops at the end of the running batch on SIGTERM and raises ``SIGTERMException``
    (a ``SystemExit`` with status 0); the command line turns that into exit status 143.
    """

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return
        if trainer.state.fn != "fit" or trainer.checkpoint_callback is None:
            return
        path = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            print(
                f"\nInterrupted: saved {path}; resume with `fit ... --ckpt_path last`.", flush=True
            )


def find_last_checkpoint(log_root: str | Path) -> Path | None:
    """The most recently written ``last*.ckpt`` under ``log_root`` (all run versions)."""
    candidates = list(Path(log_root).glob("**/checkpoints/last*.ckpt"))
    return max(candidates, key=lambda p: p.stat().st_mtime_ns) if candidates else None
