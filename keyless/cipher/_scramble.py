"""PE followed by a keyed block scramble: privacy bought by shrinking PE's key invariant.

Under independent keys a PE ciphertext keeps each pixel's sorted fold in place, and a U-Net
turns that picture back into a recognisable image. Scrambling the M x M blocks of every
ciphertext under a fresh key leaves only the unordered set of the blocks' sorted folds: the
layout is gone, so an attacker must first solve a jigsaw. A model that is fed that set (the
``bag`` stem and the ``bagnet`` model) still classifies, from what the blocks show.

The owner may also add Gaussian noise to the plain image before encrypting (``noise``, set on
:class:`~keyless.cipher.PixelCipher`): decryption then gives the noisy image back, never the
original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from keyless._imagetypes import ImageLike, to_batch
from keyless._lazy import torch
from keyless.cipher._base import KeyFile, count_blocks, pack_arrays, unpack_arrays
from keyless.cipher._block import random_permutations
from keyless.cipher._pe import NUM_CODES, PixelCipher, PixelKey
from keyless.errors import InputError, KeyMaterialError
from keyless.invariant import blocks_of, canonical_blocks, image_of
from keyless.keys import CsprngSource, KeySource

_KEY_MAGIC = b"KEYLESS-SCRAMBLEKEY-1\n"


@dataclass(frozen=True)
class ScrambledKey(KeyFile):
    """PE codes (N, H, W) uint8 and block positions (N, B) int32: output block ``b`` takes the
    PE-encrypted input block ``positions[:, b]``. N == 1 is a common key."""

    pixel: PixelKey
    positions: torch.Tensor
    magic: ClassVar[bytes] = _KEY_MAGIC
    bytes_per_pixel: ClassVar[int] = 5  # a code, and an int32 position per block of >= 1 pixel

    def __post_init__(self) -> None:
        if self.positions.dtype != torch.int32 or self.positions.dim() != 2:
            raise KeyMaterialError("block positions must be (N, B) int32")
        if len(self.pixel) != self.positions.shape[0]:
            raise KeyMaterialError("a scramble key needs one block order per pixel key")

    def __len__(self) -> int:
        return len(self.pixel)

    def __getitem__(self, index: int | slice | torch.Tensor) -> ScrambledKey:
        index = slice(index, index + 1) if isinstance(index, int) else index
        return ScrambledKey(self.pixel[index], self.positions[index])

    def to(self, device: torch.device | str) -> ScrambledKey:
        return ScrambledKey(self.pixel.to(device), self.positions.to(device))

    def to_bytes(self) -> bytes:
        """Stable serialisation: a magic line, then an npz of the codes and the positions."""
        return pack_arrays(_KEY_MAGIC, {"codes": self.pixel.codes, "positions": self.positions})

    @classmethod
    def from_bytes(cls, data: bytes) -> ScrambledKey:
        arrays = unpack_arrays(data, _KEY_MAGIC, "scramble")
        try:
            codes = arrays["codes"]
            key = cls(PixelKey(codes), arrays["positions"])
        except (ValueError, KeyError) as exc:
            raise KeyMaterialError(f"not a keyless scramble key ({exc})") from None
        b = key.positions.shape[1]
        valid = key.positions.long().sort(-1).values == torch.arange(b)
        if (codes.numel() and int(codes.max()) >= NUM_CODES) or not bool(valid.all()):
            raise KeyMaterialError("damaged scramble key: a code or its block order is invalid")
        return key


@dataclass(frozen=True)
class ScrambledPixelCipher(PixelCipher):
    """PE (with all of :class:`PixelCipher`'s options), then the image's ``block_size`` x
    ``block_size`` blocks moved to keyed positions.

    Its key invariant is the unordered set of the blocks' sorted folds (shown in a canonical,
    lexicographic block order); ``block_size`` equal to the image side is plain PE.

    Args:
        block_size: M; image sides must be multiples of it (16, 8 or 4 for CIFAR-10).
    """

    block_size: int = 8
    name: ClassVar[str] = "pe-scramble"
    commutes_with_moves: ClassVar[bool] = False  # a shift or a flip moves pixels across blocks

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {self.block_size}")

    def blocks(self, height: int, width: int) -> int:
        return count_blocks(self.name, self.block_size, height, width)

    def key_invariant(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """The blocks' sorted folds in a canonical order: no key changes it (:func:`~keyless.
        invariant.canonical_blocks`), and it is all an independent-key model can use."""
        return canonical_blocks(super().key_invariant(ciphertexts), self.block_size, bits=7)

    def key_space_bits(self, height: int, width: int) -> float:
        """log2 of the number of keys for one H x W image (brute force)."""
        orders = math.lgamma(self.blocks(height, width) + 1) / math.log(2)
        return super().key_space_bits(height, width) + orders

    def keygen(
        self,
        n: int,
        size: tuple[int, int],
        source: KeySource | None = None,
        ids: list[str] | None = None,
        device: torch.device | str = "cpu",
    ) -> ScrambledKey:
        """Draw ``n`` keys for (H, W) images: PE codes, then block orders from a second stream
        (per image id with ``ids``, as for PE)."""
        source = source or CsprngSource()
        blocks = self.blocks(*size)
        pixel = super().keygen(n, size, source, ids, device)
        if ids is None:
            orders = random_permutations(source.stream(), n, blocks, np.int32)
        else:
            orders = np.concatenate(
                [random_permutations(source.stream(f"{i}/blocks"), 1, blocks, np.int32)
                 for i in ids] or [np.zeros((0, blocks), np.int32)]
            )  # fmt: skip
        return ScrambledKey(pixel, torch.from_numpy(orders).to(device))

    def load_key(self, path: Path | str) -> ScrambledKey:
        return ScrambledKey.load(path)

    def encrypt(self, images: ImageLike, key: ScrambledKey) -> ImageLike:
        """PE under ``key.pixel``, then the blocks moved by ``key.positions``."""
        batch, restore = to_batch(images)
        x = super().encrypt(batch, key.pixel)
        blocks = blocks_of(x, self.block_size)
        index = self._positions(key, blocks)[..., None].expand_as(blocks)
        return restore(image_of(torch.gather(blocks, 1, index), *x.shape[1:3], self.block_size))

    def decrypt(self, images: ImageLike, key: ScrambledKey) -> ImageLike:
        """Exact inverse of :meth:`encrypt` under the same key."""
        batch, restore = to_batch(images)
        blocks = blocks_of(batch, self.block_size)
        index = self._positions(key, blocks)[..., None].expand_as(blocks)
        moved = torch.empty_like(blocks).scatter_(1, index, blocks)
        x = image_of(moved, *batch.shape[1:3], self.block_size)
        return restore(super().decrypt(x, key.pixel))

    def _positions(self, key: ScrambledKey, blocks: torch.Tensor) -> torch.Tensor:
        """The key's block orders as (N, B) int64 for a gather, or a one-line error."""
        n, b, _ = blocks.shape
        if len(key) not in (1, n) or key.positions.shape[1] != b:
            raise KeyMaterialError(
                f"{self.name} key with {tuple(key.positions.shape)} block orders does not fit "
                f"{n} images of {b} blocks"
            )
        if key.positions.device != blocks.device:
            raise InputError(f"key is on {key.positions.device} but images are on {blocks.device}")
        return key.positions.long().expand(n, b)
