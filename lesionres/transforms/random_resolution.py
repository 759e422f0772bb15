"""Training-time resolution augmentation: a random degradation with probability p."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torchio as tio
from torchio.transforms.augmentation import RandomTransform

from lesionres.transforms._base import DegradationTransform
from lesionres.transforms.acquisition import AcquisitionDegradation
from lesionres.transforms.crude import CrudeDegradation
from lesionres.transforms.functional import SliceProfile
from lesionres.transforms.linear import LinearDegradation

__all__ = ["Preset", "RandomMethod", "RandomResolution"]

RandomMethod = Literal["crude", "linear", "acquisition"]
Preset = Literal["nnunet", "synthseg", "sweep", "none"]
_METHODS = ("crude", "linear", "acquisition")


def _range(value: object, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}") from err
    if not 0 < low <= high < float("inf"):
        raise ValueError(f"{name} must satisfy 0 < min <= max, got {value!r}")
    return low, high


def _probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class RandomResolution(RandomTransform):
    """With probability ``p``, degrade the resolution with a randomly drawn method and size.

    When applied, it draws (all from torch's global generator, so ``torch.manual_seed``
    reproduces it and ``DataLoader`` workers, which torch seeds differently, differ):

    * a method, uniformly from ``methods``;
    * with probability ``p_thick_slices`` thick slices: one random axis gets a spacing drawn
      uniformly from ``slice_thickness`` and the other axes keep theirs; otherwise an
      isotropic spacing drawn uniformly from ``isotropic_spacing``;

    and applies the deterministic transform: :class:`~lesionres.transforms.AcquisitionDegradation`
    at that spacing, or :class:`~lesionres.transforms.LinearDegradation` /
    :class:`~lesionres.transforms.CrudeDegradation` with ``factor = spacing / image spacing``
    (rounded to a whole number for crude, so crude needs at least 1.5x to do anything). Axes
    whose drawn spacing is not coarser than the image's are left alone. Factors are computed
    from the first selected intensity image; the images of a subject are assumed to share a
    grid (check it with ``Subject.check_consistent_space()``). The applied transform is
    recorded in the subject's history, as TorchIO's own random transforms do.

    Label maps are untouched unless ``include_mask=True``: the usual training setup is a
    degraded image against the full-resolution mask.

    Args:
        p: Probability of degrading a subject at all.
        methods: Methods to draw from.
        isotropic_spacing: ``(min, max)`` isotropic target spacing, mm (or multiples of the
            image spacing if ``relative``).
        slice_thickness: ``(min, max)`` thick-slice spacing for one axis, same units.
        p_thick_slices: Probability of thick slices instead of an isotropic spacing.
        include_mask: Degrade label maps too.
        relative: Interpret the two ranges as multiples of each image's spacing, not mm.
        acquisition_profile: Slice profile of the ``acquisition`` method: ``box`` (the
            physical model the test conditions use) or ``synthseg_augmentation`` (SynthSeg's
            stronger blur, FWHM about 1.8x the spacing).
        **kwargs: See :class:`torchio.transforms.Transform` (``include``, ``exclude``, ...).

    Raises:
        ValueError: On a probability outside [0, 1], an unknown or empty method list, or a
            range that is not ``0 < min <= max``.
    """

    def __init__(
        self,
        p: float = 0.25,
        methods: Sequence[RandomMethod] = ("crude", "linear", "acquisition"),
        isotropic_spacing: tuple[float, float] = (1.0, 4.0),
        slice_thickness: tuple[float, float] = (1.0, 8.0),
        p_thick_slices: float = 0.5,
        include_mask: bool = False,
        relative: bool = False,
        acquisition_profile: SliceProfile = "box",
        **kwargs,
    ) -> None:
        # The base class's own probability stays 1: gating here makes p=0 exactly the identity
        # (the base draws rand() > p, and rand() can be 0.0).
        super().__init__(**kwargs)
        self.p = _probability(p, "p")
        if isinstance(methods, str):
            methods = (methods,)  # type: ignore[assignment]
        self.methods = tuple(methods)
        unknown = [m for m in self.methods if m not in _METHODS]
        if not self.methods or unknown:
            raise ValueError(
                f"methods must be a non-empty selection of {', '.join(_METHODS)}; got {methods!r}"
            )
        self.isotropic_spacing = _range(isotropic_spacing, "isotropic_spacing")
        self.slice_thickness = _range(slice_thickness, "slice_thickness")
        self.p_thick_slices = _probability(p_thick_slices, "p_thick_slices")
        if not isinstance(include_mask, bool) or not isinstance(relative, bool):
            raise ValueError("include_mask and relative must be True or False")
        self.include_mask = include_mask
        self.relative = relative
        if acquisition_profile not in ("box", "gaussian", "synthseg_augmentation"):
            raise ValueError(
                "acquisition_profile must be box, gaussian or synthseg_augmentation, got "
                f"{acquisition_profile!r}"
            )
        self.acquisition_profile = acquisition_profile
        self.args_names = [
            "p",
            "methods",
            "isotropic_spacing",
            "slice_thickness",
            "p_thick_slices",
            "include_mask",
            "relative",
            "acquisition_profile",
        ]

    @classmethod
    def preset(cls, name: Preset) -> RandomResolution | None:
        """Settings that mimic a known pipeline's low-resolution augmentation.

        * ``"nnunet"``: nnU-Net v2's ``SimulateLowResolutionTransform`` (scale 0.5-1, same
          scale on all axes, applied with probability 0.25 per sample and then 0.5 per
          channel; nearest-exact down, trilinear up). Approximated as ``linear`` with an
          isotropic factor in [1, 2] relative to the image spacing and ``p=0.125`` (0.25 x 0.5:
          a single-channel T1 is only degraded when its one channel is drawn). Differences:
          down-sampling is linear rather than nearest (slightly less aliasing), and the factor
          is uniform in [1, 2] rather than 1 / U(0.5, 1) (mean 1.5 rather than 1.39).
        * ``"synthseg"``: SynthSeg's random acquisition resolution (``SampleResolution`` with
          ``max_res_iso=4``, ``max_res_aniso=8``, ``prob_iso=0.1``, ``prob_min=0.05``):
          ``acquisition`` at an isotropic 1-4 mm (10%) or one axis at 1-8 mm (90%), applied
          95% of the time, with SynthSeg's blur (``acquisition_profile=
          "synthseg_augmentation"``: sigma 0.75 x ratio, an augmentation that over-blurs on
          purpose). Differences: slice thickness equals the spacing (SynthSeg draws a
          thickness up to it, i.e. sometimes less blur), no random jitter of sigma, and linear
          rather than nearest sampling.
        * ``"sweep"``: covers lesionres's own test conditions (``condition_preset: sweep``):
          every method (crude, linear, acquisition), an isotropic factor 1-4 or one axis 1-5
          times coarser (50% each), relative to each scan's spacing (on a 1 mm scan: up to
          4 mm isotropic or 1x1x5 mm slices), applied to half the samples so that the original
          resolution stays well learned. It trains on the very degradations it is tested on:
          an in-distribution check, not evidence of tolerance to real scanners.
        * ``"none"``: no resolution augmentation; returns ``None``.

        Raises:
            ValueError: For an unknown preset name.
        """
        if name == "none":
            return None
        if name == "nnunet":
            return cls(
                p=0.125,
                methods=("linear",),
                isotropic_spacing=(1.0, 2.0),
                slice_thickness=(1.0, 2.0),
                p_thick_slices=0.0,
                relative=True,
            )
        if name == "synthseg":
            return cls(
                p=0.95,
                methods=("acquisition",),
                isotropic_spacing=(1.0, 4.0),
                slice_thickness=(1.0, 8.0),
                p_thick_slices=0.9,
                acquisition_profile="synthseg_augmentation",
            )
        if name == "sweep":
            return cls(
                p=0.5,
                methods=_METHODS,
                isotropic_spacing=(1.0, 4.0),
                slice_thickness=(1.0, 5.0),
                p_thick_slices=0.5,
                relative=True,
            )
        raise ValueError(
            f"unknown RandomResolution preset {name!r} (expected nnunet, synthseg, sweep or none)"
        )

    @staticmethod
    def _uniform(bounds: tuple[float, float]) -> float:
        low, high = bounds
        return low + (high - low) * float(torch.rand(()))

    def get_params(self) -> tuple[RandomMethod, int | None, float]:
        """Draw ``(method, thick_axis or None, spacing)``; the spacing is in the ranges' unit."""
        method = self.methods[int(torch.randint(len(self.methods), ()))]
        if float(torch.rand(())) < self.p_thick_slices:
            axis = int(torch.randint(3, ()))
            return method, axis, self._uniform(self.slice_thickness)
        return method, None, self._uniform(self.isotropic_spacing)

    def make_transform(
        self,
        method: RandomMethod,
        axis: int | None,
        value: float,
        spacing: Sequence[float],
    ) -> DegradationTransform:
        """The deterministic transform for drawn parameters and an image of ``spacing`` mm."""
        if self.relative:
            ratios = [1.0, 1.0, 1.0] if axis is not None else [value] * 3
            if axis is not None:
                ratios[axis] = value
        else:
            target = list(spacing) if axis is not None else [value] * 3
            if axis is not None:
                target[axis] = value
            ratios = [t / s for t, s in zip(target, spacing, strict=True)]
        factor = [max(1.0, r) for r in ratios]
        # copy=False: the subject was already copied by this transform's own call.
        common = {
            "include_mask": self.include_mask,
            "include": self.include,
            "exclude": self.exclude,
            "copy": False,
        }
        if method == "crude":
            return CrudeDegradation([max(1, round(f)) for f in factor], **common)
        if method == "linear":
            return LinearDegradation(factor, **common)
        common["profile"] = self.acquisition_profile
        if self.relative:
            return AcquisitionDegradation(factor=factor, **common)
        return AcquisitionDegradation(
            target_spacing=[max(t, s) for t, s in zip(target, spacing, strict=True)], **common
        )

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        if not float(torch.rand(())) < self.p:
            return subject
        images = subject.get_images(intensity_only=True, include=self.include, exclude=self.exclude)
        if not images:
            return subject
        spacing = tuple(float(s) for s in images[0].spacing)
        transform = self.make_transform(*self.get_params(), spacing)
        transformed = transform(subject)
        assert isinstance(transformed, tio.Subject)
        return transformed
