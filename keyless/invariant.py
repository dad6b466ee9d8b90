"""What every PE key leaves unchanged: the fold min(p, 255 - p) of every value.

Inversion maps p to 255 - p and leaves the fold alone; shuffling permutes a pixel's three folds,
so their sorted triple is the maximal key invariant. The FR attack shows the fold; the
key-invariant model stem feeds the sorted fold to the network.
"""

from __future__ import annotations

from keyless._lazy import torch


def fold(images: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 -> (..., 3) uint8 in 0..127: min(p, 255 - p) per value."""
    return torch.minimum(images, 255 - images)


def sorted_fold(images: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 -> (..., 3) uint8: each pixel's folds sorted ascending (key-invariant)."""
    return fold(images).sort(dim=-1).values


def blocks_of(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, B, size * size * C): the size x size blocks in raster order, each
    block's values row by row (H and W must be multiples of ``size``)."""
    n, h, w, c = images.shape
    x = images.reshape(n, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // size) * (w // size), size * size * c)


def image_of(blocks: torch.Tensor, height: int, width: int, size: int) -> torch.Tensor:
    """Inverse of :func:`blocks_of`: (N, B, size * size * C) -> (N, H, W, C)."""
    n, s = blocks.shape[0], blocks.shape[2]
    c = s // (size * size)
    x = blocks.reshape(n, height // size, width // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, height, width, c)


def sort_rows(rows: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort the rows of (N, B, S) integer tensors (values below 2**bits) lexicographically
    within each image; returns (sorted rows, the order: sorted row ``i`` is input row
    ``order[:, i]``).

    A canonical order for an unordered set of blocks: two images whose blocks are the same
    multiset give bit-identical output. Packs ``63 // bits`` values into each int64 word and
    sorts stably from the last word to the first (radix sort over words), so a sort costs
    S / (63 // bits) passes instead of S.
    """
    n, b, s = rows.shape
    per_word = 63 // bits
    padded = torch.nn.functional.pad(rows.long(), (0, -s % per_word))
    weights = (1 << (bits * torch.arange(per_word - 1, -1, -1, device=rows.device))).long()
    words = padded.view(n, b, padded.shape[-1] // per_word, per_word)
    words = (words * weights).sum(-1)  # (N, B, words), big-endian
    order = torch.arange(b, device=rows.device).expand(n, b)
    for k in reversed(range(words.shape[-1])):
        key = torch.gather(words[..., k], 1, order)
        order = torch.gather(order, 1, key.sort(dim=1, stable=True).indices)
    return torch.gather(rows, 1, order[..., None].expand(n, b, s)), order


def canonical_blocks(images: torch.Tensor, size: int, bits: int = 8) -> torch.Tensor:
    """(N, H, W, C) -> (N, H, W, C): the image's size x size blocks put in a canonical
    (lexicographic) order, laid out again in raster order. Invariant to any permutation of the
    blocks: what remains of an image whose block positions a fresh key scrambles."""
    h, w = images.shape[1:3]
    return image_of(sort_rows(blocks_of(images, size), bits)[0], h, w, size)
