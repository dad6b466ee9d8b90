"""Batched augmentation on uint8 (N, H, W, 3) images: valid on ciphertexts as on plain images.

Moving pixels (flip, translate) commutes with PE when the key moves with them, so augmenting
ciphertexts in the cloud equals encrypting augmented images under a moved key. Contrast about
mid-grey commutes with PE under the same key; a mid-grey cutout square on a ciphertext is one on
its plain image, up to one grey level.
"""

from __future__ import annotations

import torch


def reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map positions outside 0..size-1 back inside by reflection (no edge repeat)."""
    period = 2 * (size - 1) if size > 1 else 1
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def random_translate(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift every image by its own random offset in -pad..pad, filling by reflection."""
    if pad == 0:
        return images
    n, h, w, _ = images.shape
    dy = torch.randint(-pad, pad + 1, (n, 1), generator=generator).to(images.device)
    dx = torch.randint(-pad, pad + 1, (n, 1), generator=generator).to(images.device)
    rows = reflect_index(torch.arange(h, device=images.device) + dy, h)  # (N, H)
    cols = reflect_index(torch.arange(w, device=images.device) + dx, w)  # (N, W)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images[batch, rows[:, :, None], cols[:, None, :]]


def random_block_translate(
    images: torch.Tensor, size: int, pad: int, generator: torch.Generator
) -> torch.Tensor:
    """Shift every ``size`` x ``size`` block of every image within itself, each by its own
    random offset in -pad..pad, filling by reflection inside the block.

    Per-pixel keys move with their pixels and the block scramble only moves whole blocks, so on
    a ``pe-scramble`` ciphertext this is the encryption of the plain image with its blocks
    shifted the same way: a shift augmentation that survives the scramble.
    """
    n, h, w, c = images.shape
    blocks = images.reshape(n, h // size, size, w // size, size, c).transpose(2, 3)
    moved = random_translate(blocks.reshape(-1, size, size, c), pad, generator)
    return moved.reshape(n, h // size, w // size, size, size, c).transpose(2, 3).reshape(n, h, w, c)


def shift(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift all images by (dy, dx), filling by reflection (for test-time augmentation)."""
    h, w = images.shape[1:3]
    rows = reflect_index(torch.arange(h, device=images.device) + dy, h)
    cols = reflect_index(torch.arange(w, device=images.device) + dx, w)
    return images[:, rows][:, :, cols]


def flip_where(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror (left-right) the images whose ``mask`` entry is true."""
    return torch.where(mask[:, None, None, None], images.flip(2), images)


def scale_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from mid-grey (127.5) by its ``factor`` (N,), rounding to the
    nearest value symmetrically about mid-grey.

    NP inversion is the reflection about mid-grey and the colour shuffle only reorders values, so
    this commutes exactly with PE: contrast on a ciphertext is contrast on its plain image.
    """
    offset = images.float() - 127.5  # never 0: values are half-integers away from mid-grey
    distance = (offset.abs() * factor.to(offset.device)[:, None, None, None]).floor()
    return (127.5 + offset.sign() * (distance.clamp(max=127) + 0.5)).to(torch.uint8)


def random_contrast(
    images: torch.Tensor, strength: float, generator: torch.Generator
) -> torch.Tensor:
    """Scale every image's contrast about mid-grey by its own random factor in 1 +/- strength."""
    factor = 1 + strength * (2 * torch.rand(len(images), generator=generator) - 1)
    return scale_contrast(images, factor)


def random_cutout(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Fill one random ``size`` x ``size`` square inside every image with grey 127.

    On a ciphertext this is the encryption of the plain image with that square set to 127 or
    128 (NP inversion swaps them, the shuffle keeps them), and both fold to 127: the cut looks
    the same to the key-invariant stem whichever image it was made on.
    """
    if size == 0:
        return images
    n, h, w, _ = images.shape
    if size > min(h, w):
        raise ValueError(f"cutout of {size} pixels does not fit {h}x{w} images")
    top = torch.randint(0, h - size + 1, (n, 1), generator=generator).to(images.device)
    left = torch.randint(0, w - size + 1, (n, 1), generator=generator).to(images.device)
    rows = torch.arange(h, device=images.device) - top  # (N, H): inside where 0 <= . < size
    cols = torch.arange(w, device=images.device) - left
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None]
    return images.masked_fill(inside[..., None], 127)
