"""``LesionSegmenter``: the LightningModule that trains the 3D U-Net and scores test scans."""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import TensorBoardLogger
from torchmetrics import MetricCollection
from torchmetrics.classification import BinarySpecificity
from torchmetrics.segmentation import DiceScore

from lesionres.conditions import effective_fwhm_mm
from lesionres.data.datamodule import upgrade_checkpoint
from lesionres.inference import sliding_window
from lesionres.metrics import score_masks
from lesionres.models import NormKind, UNet3D
from lesionres.precision import cpu_runs_bf16

__all__ = ["LesionSegmenter"]


class LesionSegmenter(pl.LightningModule):
    """3D U-Net lesion segmentation, trained with BCE (the study) or Dice+BCE.

    Args:
        base_channels: U-Net feature maps at the first level (doubled per level).
        depth: U-Net down-sampling steps; volumes and patches must be divisible by
            ``2**depth``.
        norm: Normalisation after each convolution.
        dropout: ``Dropout3d`` probability in each block.
        output_prior: Lesion probability the untrained network starts from (the head's bias
            initialisation; ``UNet3D``); ``None`` for PyTorch's default.
        loss: ``bce`` (binary cross-entropy on logits, the study's) or ``dice_bce``.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        lr_schedule: ``constant`` (the study's) or ``poly``: nnU-Net's decay
            ``lr * (1 - step / total_steps) ** 0.9`` over the whole run, which settles the
            weights by the last epochs of a short run.
        threshold: Probability above which a voxel is lesion (metrics, test, predict).
        inference: ``full`` feeds whole volumes; ``sliding`` tiles them with windows of
            ``window`` voxels (for volumes too big for the GPU).
        window: Sliding-window shape; ``None`` uses 128 per axis.
        overlap: Sliding-window overlap share.
        connectivity: Voxel connectivity of lesion components in test metrics (26 as in
            ISLES'22; 6 as in the ATLAS challenge code).
        empty_convention: Metric values when ground truth and prediction are both empty:
            ``one`` (ATLAS/ISLES challenge code) or ``nan`` (nnU-Net, MONAI).
        hd95: HD95 aggregation: ``pooled`` (medpy: 95th percentile of both directions'
            surface distances together) or ``max`` (MONAI: the larger directed one).
        val_precision: ``auto``: validation passes inside an fp32 ``fit`` on a CPU that runs
            bfloat16 natively use bf16 autocast (2.3x faster whole-volume inference, the same
            validation Dice to 4e-4: ``lesionres.precision``); ``trainer``: the trainer's own
            precision throughout.
        channels_last: Use ``channels_last_3d`` memory format (on this project's CPU 1.3x
            faster fp32 training steps of the default U-Net; BENCHMARKS.md).
        compile: Wrap the network in ``torch.compile``.
        init_weights: A lesionres checkpoint whose weights ``fit`` starts from (fine-tuning);
            the optimizer, schedule and epoch count start fresh. ``--ckpt_path`` resumes
            instead.
    """

    def __init__(
        self,
        base_channels: int = 16,
        depth: int = 4,
        norm: NormKind = "instance",
        dropout: float = 0.0,
        output_prior: float | None = 0.01,
        loss: Literal["bce", "dice_bce"] = "bce",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "poly"] = "constant",
        threshold: float = 0.5,
        inference: Literal["full", "sliding"] = "full",
        window: tuple[int, int, int] | None = None,
        overlap: float = 0.5,
        connectivity: Literal[6, 18, 26] = 26,
        empty_convention: Literal["one", "nan"] = "one",
        hd95: Literal["pooled", "max"] = "pooled",
        val_precision: Literal["auto", "trainer"] = "auto",
        channels_last: bool = False,
        compile: bool = False,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = UNet3D(1, 1, base_channels, depth, norm, dropout, output_prior)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last_3d)
        self.forward_net = torch.compile(self.net) if compile else self.net
        with warnings.catch_warnings():  # torchmetrics warns about `average` even when it is given
            warnings.filterwarnings("ignore", message=".*DiceScore metric currently defaults.*")
            dice = DiceScore(num_classes=1, average="micro", aggregation_level="samplewise")
        metrics = MetricCollection(
            {"dice": dice, "specificity": BinarySpecificity(validate_args=False)}
        )
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.completed: set[tuple[str, str]] = set()  # (subject, condition) rows already written
        self._overlay: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------------ network
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits for a ``(N, 1, X, Y, Z)`` batch."""
        if self.hparams.channels_last:
            image = image.contiguous(memory_format=torch.channels_last_3d)
        return self.forward_net(image)

    def predict_logits(self, image: torch.Tensor) -> torch.Tensor:
        """Logits for a whole volume, by full-volume or sliding-window inference."""
        if self.hparams.inference == "sliding":
            window = self.hparams.window or (128, 128, 128)
            return sliding_window(self, image, window, self.hparams.overlap)
        return self(image)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """BCE on logits (the study's), plus the soft Dice loss with ``loss="dice_bce"``."""
        bce = F.binary_cross_entropy_with_logits(logits.float(), target)
        if self.hparams.loss == "bce":
            return bce
        prob = torch.sigmoid(logits.float())
        dims = tuple(range(1, prob.ndim))
        intersection = (prob * target).sum(dims)
        soft_dice = (2 * intersection + 1) / (prob.sum(dims) + target.sum(dims) + 1)
        return bce + (1 - soft_dice).mean()

    def configure_optimizers(self):
        """Adam (fused on CUDA); with ``lr_schedule="poly"`` nnU-Net's polynomial decay per step."""
        optimizer = torch.optim.Adam(
            self.parameters(),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            fused=torch.cuda.is_available() and self.device.type == "cuda",
        )
        if self.hparams.lr_schedule == "constant":
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: max(0.0, 1 - step / total) ** 0.9
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # ------------------------------------------------------------------- train and validate
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Loss of a batch of volumes or patches; the training Dice/specificity accumulate."""
        logits = self(batch["image"])
        target = batch["mask"].float()  # masks travel as uint8: a quarter of the bytes
        loss = self.loss(logits, target)
        self.train_metrics.update(self._binarise(logits), batch["mask"].long())
        self.log("train_loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def on_train_epoch_end(self) -> None:
        """Log the learning rate and the epoch's training metrics."""
        self.log("lr", self.optimizers().param_groups[0]["lr"])
        if _updated(self.train_metrics):  # a resumed mid-epoch checkpoint may leave no batch
            self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def _validation_autocast(self):
        """bf16 autocast for a validation pass of an fp32 CPU fit (see ``val_precision``)."""
        fitting = self.trainer.state.fn == "fit"
        fp32_cpu = self.device.type == "cpu" and self.trainer.precision == "32-true"
        if self.hparams.val_precision == "auto" and fitting and fp32_cpu and cpu_runs_bf16():
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Loss and metrics of one whole validation volume; keep the slice with the most lesion
        for the epoch's TensorBoard overlay."""
        with self._validation_autocast():
            logits = self.predict_logits(batch["image"])
        self.log(
            "val_loss",
            self.loss(logits, batch["mask"].float()),
            batch_size=len(logits),
            sync_dist=True,
        )
        prediction = self._binarise(logits)
        self.val_metrics.update(prediction, batch["mask"].long())
        lesion_voxels = batch["mask"][0, 0].sum(dim=(0, 1), dtype=torch.int64)
        if self._overlay is None or lesion_voxels.max() > self._overlay[2][0, 0].sum():
            z = int(lesion_voxels.argmax())  # axial slice through the most lesion
            self._overlay = (
                batch["image"][0, 0, :, :, z],
                prediction[0, 0, :, :, z],
                batch["mask"][:1, :1, :, :, z],
            )

    def on_validation_epoch_end(self) -> None:
        """Log the validation metrics (``val_dice`` picks the best checkpoint) and the overlay."""
        if _updated(self.val_metrics):
            values = self.val_metrics.compute()
            self.log_dict(
                {k: torch.nan_to_num(v, nan=0.0) for k, v in values.items()}, prog_bar=True
            )
        self.val_metrics.reset()
        if self._overlay is not None and isinstance(self.logger, TensorBoardLogger):
            image, prediction, truth = self._overlay
            self.logger.experiment.add_image(
                "val_overlay", _overlay_rgb(image, prediction, truth[0, 0]), self.global_step
            )
        self._overlay = None

    def _binarise(self, logits: torch.Tensor) -> torch.Tensor:
        # sigmoid(x) >= t  <=>  x >= logit(t): no sigmoid pass needed
        t = self.hparams.threshold
        return (logits >= math.log(t / (1 - t))).long()

    # ------------------------------------------------------------------------------ test
    def test_step(self, item: dict, batch_idx: int, dataloader_idx: int = 0) -> dict | None:
        """Score one scan under one condition against its original mask, on its own grid."""
        record, condition = item["record"], item["condition"]
        if (record.subject_id, condition.name) in self.completed:
            return None
        row = {
            "subject_id": record.subject_id,
            "dataset": record.dataset,
            "cohort": record.cohort,
            "modality": record.modality,
            "space": record.space,
            "condition": condition.name,
            "method": condition.method,
            "factor": condition.factor_label,
            "spacing_mm": condition.test_spacing_label(item["spacing"])
            if "spacing" in item
            else "",
            "effective_fwhm_mm": effective_fwhm_mm(condition, item["spacing"])
            if "spacing" in item
            else "",
            "threshold": self.hparams.threshold,
            **(item["registration"].row() if "registration" in item else {}),
            "error": item.get("error", ""),
        }
        if row["error"]:
            return {"row": row}
        try:
            probability = self.predict_probabilities(item["image"], item["mapping"])
            prediction = probability >= self.hparams.threshold
            row.update(
                score_masks(
                    prediction,
                    item["mask"] > 0,
                    item["spacing"],
                    connectivity=self.hparams.connectivity,
                    empty=self.hparams.empty_convention,
                    hd95=self.hparams.hd95,
                )
            )
        except Exception as error:  # noqa: BLE001 - one bad scan must not stop the run
            row["error"] = f"{type(error).__name__}: {error}"
            return {"row": row}
        return {"row": row, "probability": probability, "prediction": prediction, "item": item}

    @torch.no_grad()
    def predict_probabilities(self, image: torch.Tensor, mapping) -> np.ndarray:
        """Probabilities for one model-grid image ``(1, X, Y, Z)``, on the scan's own grid.

        A scan registered to MNI (:class:`~lesionres.registration.RegisteredMapping`) keeps them
        only inside its lesion region, the template's brain + 4 mm.
        """
        logits = self.predict_logits(image[None])
        probability = torch.sigmoid(logits.float())[0].cpu()
        region = getattr(mapping, "lesion_region", None)
        if region is not None:
            probability = probability * region
        return mapping.to_native(probability)[0].numpy()

    def predict_step(self, item: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """Probabilities of one scan on its own grid (the writer thresholds and saves them)."""
        if "error" in item:
            return {"item": item}
        return {
            "item": item,
            "probability": self.predict_probabilities(item["image"], item["mapping"]),
        }

    # ---------------------------------------------------------------------- checkpoints
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Read checkpoints written before the data module kept the model grid: their grid
        moves to the data module's part (:func:`~lesionres.data.datamodule.upgrade_checkpoint`),
        which Lightning restores next."""
        upgrade_checkpoint(checkpoint)


def _updated(metrics: MetricCollection) -> bool:
    return all(metric.update_called for metric in metrics.values())


def _overlay_rgb(
    image: torch.Tensor, prediction: torch.Tensor, truth: torch.Tensor
) -> torch.Tensor:
    """A ``(3, H, W)`` picture: grey image, ground truth in green, prediction in red (overlap
    yellow), rotated so anterior is up as radiologists expect."""
    image = image.float().cpu()
    low, high = torch.quantile(image, 0.01), torch.quantile(image, 0.99)
    grey = ((image - low) / (high - low + 1e-6)).clamp(0, 1)
    rgb = torch.stack([grey, grey, grey]) * 0.7
    rgb[0] = torch.where(prediction.cpu() > 0, 1.0, rgb[0])
    rgb[1] = torch.where(truth.cpu() > 0, 1.0, rgb[1])
    rgb = rgb.transpose(1, 2).flip(1)
    scale = max(1, round(360 / max(rgb.shape[1:])))  # small grids (2 mm, tests) shown enlarged
    return rgb.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
