"""The "original" condition: a transform that leaves every image as it is."""

from __future__ import annotations

import torchio as tio

__all__ = ["Identity"]


class Identity(tio.Transform):
    """Return the subject unchanged (the ``original`` test-time condition).

    A named class rather than ``tio.Lambda(lambda x: x)`` so that it pickles into
    ``DataLoader`` workers and shows up readably in a subject's transform history.

    Args:
        **kwargs: See :class:`torchio.transforms.Transform`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.args_names = []

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        return subject
