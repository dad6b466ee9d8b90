"""The demo: encrypt the bundled sample photos and show what a ciphertext-only viewer sees."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from keyless._atomic import atomic_path
from keyless.cipher import PixelCipher
from keyless.data import read_image
from keyless.invariant import fold
from keyless.keys import KeySource
from keyless.visualize import image_grid


def sample_images() -> list[tuple[str, np.ndarray]]:
    """The bundled 96x96 sample photos (from scikit-image's public-domain data) by name."""
    folder = resources.files("keyless") / "samples"
    return [
        (p.name.removesuffix(".png"), read_image(Path(str(p))))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".png")
    ]


def encryption_grid(out: Path, source: KeySource | None = None, scale: int = 2) -> Path:
    """Write a PNG grid, a row per photo: plain | encrypted under two keys | FR fold of key 1."""
    cipher = PixelCipher()
    _names, images = zip(*sample_images(), strict=True)
    plain = torch.from_numpy(np.stack(images))
    first, _ = cipher.encrypt_fresh(plain, source)
    second, _ = cipher.encrypt_fresh(plain, source)
    columns = [plain, first, second, fold(first) * 2]
    rows = [[col[i].numpy() for col in columns] for i in range(len(plain))]
    grid = image_grid(
        rows,
        ["plain", "encrypted, key 1", "encrypted, key 2", "FR fold of key 1 (x2)"],
        scale=scale,
    )
    with atomic_path(out) as tmp:
        grid.save(tmp, format="PNG")
    return out
