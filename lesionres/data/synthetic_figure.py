"""A figure of what the model is trained on: synthetic subjects next to the template.

``python -m lesionres.data.synthetic_figure docs/synthetic_subjects.png`` renders a few subjects
of both synthetic sets straight from their specifications (the same code and seed as
``synth``; no files written) and shows an axial and a coronal slice through each lesion, its
outline in red, next to the MNI152 template T1 they are all drawn from.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lesionres.data.mni_template import load_template
from lesionres.data.synthetic_render import atlas_grid, isles_grid, render_contrasts
from lesionres.data.synthetic_specs import DATASET_KEY, sample_subject, stream

__all__ = ["main", "synthetic_figure"]

_ISLES_SPACINGS = ((2.0, 2.0, 2.0), (1.0, 1.0, 5.0))  # as generate_synthetic's default


def _slices(volume: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Axial slice with the most lesion (else the middle) and the coronal one through it."""
    if mask is not None and mask.any():
        k = int(np.argmax(mask.sum(axis=(0, 1))))
        j = int(np.argmax(mask[:, :, k].sum(axis=0)))
    else:
        k, j = int(volume.shape[2] * 0.55), int(volume.shape[1] * 0.5)
    return volume[:, :, k].T, volume[:, j, :].T


def synthetic_figure(
    path: str | Path, seed: int = 42, n_atlas: int = 6, n_isles: int = 2, spacing: float = 2.0
) -> Path:
    """Write a PNG: the template, ``n_atlas`` ATLAS-like (T1) and ``n_isles`` ISLES-like (DWI and
    FLAIR) subjects of ``seed``, axial (top) and coronal (bottom) slices through each lesion.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    template = load_template()
    title = "MNI152 2009a template\n(1 mm; what all are drawn from)"
    panels = [(title, template.t1, None, 1.0, 1.0)]
    grid = atlas_grid(spacing)
    for index in range(n_atlas):
        subject = sample_subject(seed, index, "atlas")
        images, mask = render_contrasts(subject, grid)
        summary = subject.summary()["anatomy"]
        skull = "skull" if subject.anatomy.skull_mm else "stripped"
        title = (
            f"ATLAS-like {index + 1}: T1\n{subject.lesion.kind}, "
            f"{mask.sum() * spacing**3 / 1000:.1f} ml\natrophy {summary['atrophy']:.2f}, {skull}"
        )
        panels.append((title, images["t1"], mask, spacing, 1.1))
    for index in range(n_isles):
        subject = sample_subject(seed, index, "isles")
        pose = stream(seed, DATASET_KEY["isles"], index, 2)
        spacings = _ISLES_SPACINGS[index % len(_ISLES_SPACINGS)]
        images, mask = render_contrasts(subject, isles_grid(spacings, pose))
        voxel = "x".join(f"{s:g}" for s in spacings)
        for name, image in images.items():
            title = f"ISLES-like {index + 1}: {name.upper()}\n{voxel} mm, {subject.lesion.kind}"
            panels.append((title, image, mask, spacings, 2.2))  # room for the bright lesion

    fig, axes = plt.subplots(2, len(panels), figsize=(2.1 * len(panels), 5.2), squeeze=False)
    for column, (title, volume, mask, voxel, window) in enumerate(panels):
        voxel = np.broadcast_to(np.asarray(voxel, dtype=float), (3,))
        views = _slices(volume, mask)
        outlines = _slices(mask, mask) if mask is not None else (None, None)
        for row, (view, outline, (a, b)) in enumerate(
            zip(views, outlines, ((0, 1), (0, 2)), strict=True)
        ):
            ax = axes[row, column]
            extent = (0, view.shape[1] * voxel[a], 0, view.shape[0] * voxel[b])
            healthy = volume if mask is None else volume[mask == 0]
            vmax = float(np.percentile(healthy, 99.0)) * window or 1.0
            ax.imshow(view, cmap="gray", origin="lower", vmin=0, vmax=vmax, extent=extent)
            if outline is not None and outline.any():
                ax.contour(outline, levels=[0.5], colors="red", linewidths=0.6, extent=extent)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=7)
    fig.suptitle(
        f"lesionres synthetic data (seed {seed}): axial (top) and coronal (bottom) slices "
        "through each lesion (red outline)",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m lesionres.data.synthetic_figure PATH [--seed S] [--n N]``."""
    parser = argparse.ArgumentParser(description=synthetic_figure.__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n", type=int, default=6, help="ATLAS-like subjects")
    parser.add_argument("--n-isles", type=int, default=2, help="ISLES-like subjects")
    args = parser.parse_args(argv)
    print(synthetic_figure(args.path, args.seed, args.n, args.n_isles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
