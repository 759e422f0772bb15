"""Named test-time resolution conditions and external (naturally low-resolution) test sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lesionres.errors import LesionresError

__all__ = ["Condition", "ConditionMethod", "ExternalTestSet", "preset_conditions"]

ConditionMethod = Literal["original", "crude", "linear", "acquisition"]


def _fmt(values: list[float]) -> str:
    """``[2, 2, 2] -> "2"``, ``[1, 1, 5] -> "1x1x5"``, ``[1.5] -> "1.5"``."""
    text = [f"{v:g}" for v in values]
    return text[0] if len(set(text)) == 1 else "x".join(text)


@dataclass
class Condition:
    """One way of degrading the test images (the masks stay at full resolution).

    Attributes:
        name: Label in the results table; derived from method and factor/spacing when empty.
        method: ``original`` (untouched), ``crude`` (keep every Nth voxel, repeat), ``linear``
            (linear down, linear up) or ``acquisition`` (slice-profile blur, sample, back).
        factor: Per-axis (or one isotropic) reduction factor for ``crude``/``linear``/
            ``acquisition``; at least 1.
        spacing: Target voxel size in mm for ``acquisition`` (e.g. ``[1, 1, 5]``).
    """

    name: str = ""
    method: ConditionMethod = "original"
    factor: list[float] | None = None
    spacing: list[float] | None = None

    def __post_init__(self) -> None:
        if self.method not in ("original", "crude", "linear", "acquisition"):
            raise LesionresError(
                f"condition {self.name or '?'}: unknown method {self.method!r} "
                "(expected original, crude, linear or acquisition)"
            )
        if isinstance(self.factor, (int, float)):
            self.factor = [float(self.factor)]
        if isinstance(self.spacing, (int, float)):
            self.spacing = [float(self.spacing)]
        for what, values in (("factor", self.factor), ("spacing", self.spacing)):
            if values is not None and (len(values) not in (1, 3) or min(values) <= 0):
                raise LesionresError(
                    f"condition {self.name or self.method}: {what} {values} must be one positive "
                    "number or three"
                )
        if self.factor is not None and min(self.factor) < 1:
            raise LesionresError(
                f"condition {self.name or self.method}: factor {self.factor} is below 1 "
                "(a factor of N keeps 1/N of the resolution)"
            )
        if self.method == "crude" and self.factor is not None:
            if any(f != int(f) for f in self.factor):
                raise LesionresError(f"condition {self.name or 'crude'}: crude needs whole factors")
        if self.method in ("crude", "linear") and self.factor is None:
            raise LesionresError(
                f"condition {self.name or self.method}: {self.method} needs a factor"
            )
        if self.method == "acquisition" and self.factor is None and self.spacing is None:
            raise LesionresError(
                f"condition {self.name or 'acquisition'}: needs a factor or spacing"
            )
        if not self.name:
            if self.method == "original":
                self.name = "original"
            elif self.spacing is not None:
                self.name = f"{self.method}_{_fmt(self.spacing)}mm"
            else:
                self.name = f"{self.method}_x{_fmt(self.factor)}"

    @property
    def factor_label(self) -> str:
        return _fmt(self.factor) if self.factor else ""

    @property
    def spacing_label(self) -> str:
        return _fmt(self.spacing) if self.spacing else ""

    def test_spacing(self, native: list[float] | tuple[float, ...]) -> list[float]:
        """The voxel size (mm) a scan of ``native`` spacing has under this condition.

        ``original``: the native spacing; a factor multiplies it; a target spacing coarsens
        only the axes it is coarser on (a 1x1x5 mm target on a 2 mm scan gives 2x2x5 mm).
        """
        native = [float(v) for v in native]
        if self.method == "original":
            return native
        if self.spacing is not None:
            target = self.spacing * 3 if len(self.spacing) == 1 else self.spacing
            return [max(n, t) for n, t in zip(native, target, strict=True)]
        factor = self.factor * 3 if len(self.factor) == 1 else self.factor
        return [n * f for n, f in zip(native, factor, strict=True)]

    def test_spacing_label(self, native: list[float] | tuple[float, ...]) -> str:
        """:meth:`test_spacing` as ``"2"`` or ``"2x2x5"`` (the results' ``spacing_mm``)."""
        return _fmt([round(v, 3) for v in self.test_spacing(native)])


@dataclass
class ExternalTestSet:
    """A separate, naturally low-resolution test cohort (e.g. ISLES 2022), scored as is.

    Attributes:
        name: Condition label in the results table.
        root: Folder of the dataset.
        dataset: Layout (``isles22``, ``atlas`` or ``folder``).
        modality: ISLES modality (``dwi``, ``adc``, ``flair``); ISLES has no T1w, so a
            T1-trained model meets a modality shift as well as a resolution shift there. For a
            ``folder`` cohort, what its images are (e.g. ``T1w``), recorded in the results.
    """

    name: str = "isles22"
    root: str = ""
    dataset: Literal["isles22", "atlas", "folder"] = "isles22"
    modality: str = "dwi"
    extra: dict = field(default_factory=dict)


def preset_conditions(preset: Literal["study", "sweep", "none"]) -> list[Condition]:
    """The study's conditions, or a resolution sweep (factors 1.5–4 and 3/5/7 mm slices)."""
    if preset == "none":
        return [Condition()]
    if preset == "study":
        return [
            Condition(),
            Condition(method="crude", factor=[2]),
            Condition(method="linear", factor=[2]),
            Condition(method="acquisition", spacing=[1, 1, 5]),
        ]
    if preset == "sweep":
        conditions = [Condition()]
        for method in ("linear", "acquisition"):
            conditions += [Condition(method=method, factor=[f]) for f in (1.5, 2, 3, 4)]
        conditions += [Condition(method="crude", factor=[f]) for f in (2, 3, 4)]
        conditions += [Condition(method="acquisition", spacing=[1, 1, s]) for s in (3, 5, 7)]
        return conditions
    raise LesionresError(f"unknown condition preset {preset!r} (expected study, sweep or none)")
