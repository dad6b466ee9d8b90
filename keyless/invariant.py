"""What every PE key leaves unchanged: the fold min(p, 255 - p) of every value.

Inversion maps p to 255 - p and leaves the fold alone; shuffling permutes a pixel's three folds,
so their sorted triple is the maximal key invariant. The FR attack shows the fold; the
key-invariant model stem feeds the sorted fold to the network.
"""

from __future__ import annotations

import torch


def fold(images: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 -> (..., 3) uint8 in 0..127: min(p, 255 - p) per value."""
    return torch.minimum(images, 255 - images)


def sorted_fold(images: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 -> (..., 3) uint8: each pixel's folds sorted ascending (key-invariant)."""
    return fold(images).sort(dim=-1).values
