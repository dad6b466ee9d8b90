"""Small generated datasets whose classes survive PE: the class is where the image is extreme
(values near 0 or 255, fold near 0) rather than mid-grey (fold near 127)."""

from __future__ import annotations

import numpy as np
import torch

from keyless.data import ImageSet


def quadrant_images(n: int, size: int = 16, seed: int = 0) -> ImageSet:
    """``n`` (size x size) RGB images in 4 classes: class k has an extreme quadrant k."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.normal(127.5, 25, (n, size, size, 3))
    half = size // 2
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 2)
        extreme = rng.choice([12.0, 243.0], size=3)
        block = images[i, r * half : (r + 1) * half, c * half : (c + 1) * half]
        block[:] = extreme + rng.normal(0, 8, block.shape)
    images = np.clip(images, 0, 255).astype(np.uint8)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), ("a", "b", "c", "d"))


def quadrant_splits(n_train: int = 320, n_test: int = 200, size: int = 16) -> dict[str, ImageSet]:
    return {"train": quadrant_images(n_train, size, 0), "test": quadrant_images(n_test, size, 1)}


def save_quadrant_npz(path, n_train: int = 320, n_test: int = 200, size: int = 16) -> None:
    splits = quadrant_splits(n_train, n_test, size)
    np.savez(
        path,
        **{f"x_{s}": d.images.numpy() for s, d in splits.items()},
        **{f"y_{s}": d.labels.numpy().astype(np.uint8) for s, d in splits.items()},
    )


def texture_images(n: int, size: int = 16, block: int = 4, seed: int = 0) -> ImageSet:
    """``n`` (size x size) RGB images in 4 classes that survive any shuffle of ``block``-sized
    blocks and PE: every block of class k carries texture k (a horizontal ramp, a vertical
    ramp, a checkerboard, flat), in values below 128 so that the fold keeps them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    y, x = np.mgrid[0:block, 0:block]
    textures = np.stack([x, y, (x + y) % 2 * (block - 1), np.zeros_like(x)]) * 90 / (block - 1)
    tiles = np.tile(textures[labels], (1, size // block, size // block))[..., None]
    images = 20 + tiles + rng.normal(0, 4, (n, size, size, 3))
    images = np.clip(images, 0, 127).astype(np.uint8)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), ("a", "b", "c", "d"))
