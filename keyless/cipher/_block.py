"""Block-wise baselines the paper compares with: Tanaka's LE, extended LE (ELE) and EtC.

All three cut an image into M x M blocks and treat each block as a row of S symbols: LE and ELE
split every value into its upper and lower 4-bit halves (S = 6 M^2 nibbles, inversion 15 - v),
EtC keeps bytes (S = 3 M^2, inversion 255 - v). A :class:`BlockKey` then says, per image, which
symbols are inverted (an XOR mask), how the symbols of a block are permuted and, for ELE and EtC,
where each block goes. Encryption is mask, then permute, then move blocks; decryption undoes them
in reverse order. The ciphers differ only in how keys are drawn:

- ``le``: one symbol permutation and mask shared by all blocks of an image (Tanaka 2018).
- ``ele``: a different permutation and mask per block, plus block scrambling (Madono et al.).
- ``etc``: block scrambling, then per block a rotation/flip, an all-or-nothing inversion and a
  colour shuffle (Chuman, Sirichotedumrong and Kiya), written as a permutation of the block's
  3 M^2 bytes and a mask of all 0 or all 255.

Each declares its key invariant (``key_invariant``): the image put in a canonical form that no
key changes, i.e. all that a ciphertext under an independent key tells about its image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import ClassVar

import numpy as np

from keyless._imagetypes import ImageLike, to_batch
from keyless._lazy import torch
from keyless.cipher._base import CipherBase, KeyFile, count_blocks, pack_arrays, unpack_arrays
from keyless.cipher._kernel import uniform_bytes
from keyless.errors import InputError, KeyMaterialError
from keyless.invariant import sort_rows
from keyless.keys import ByteStream, CsprngSource, KeySource

_KEY_MAGIC = b"KEYLESS-BLOCKKEY-1\n"
_CHUNK = 2048  # images per gather, to bound the int64 index memory
_CANDIDATES = 1 << 22  # candidate blocks EtC's key_invariant compares at once


def _is_permutation(order: torch.Tensor) -> bool:
    """Whether each row (last dimension) holds every index 0..n-1 once: else nothing decrypts."""
    n = order.shape[-1]
    return bool((order.long().sort(-1).values == torch.arange(n)).all())


@dataclass(frozen=True)
class BlockKey(KeyFile):
    """Keys of a block-wise cipher for N images of B blocks of S symbols.

    ``mask`` (N, B or 1, S) uint8 XOR mask; ``perm`` (N, B or 1, S) int16, output symbol ``s``
    takes masked input symbol ``perm[..., s]``; ``positions`` (N, B) int32 (a large photo has
    more than 32,767 blocks), output block ``b`` takes input block ``positions[:, b]``, or None
    (blocks stay in place). N == 1 is a common key.
    """

    mask: torch.Tensor
    perm: torch.Tensor
    positions: torch.Tensor | None = None
    magic: ClassVar[bytes] = _KEY_MAGIC
    bytes_per_pixel: ClassVar[int] = 22  # ELE: 6 nibbles, each a mask byte and an int16 place,
    # and an int32 position per block of >= 1 pixel

    def __post_init__(self) -> None:
        if self.mask.dtype != torch.uint8 or self.perm.dtype != torch.int16:
            raise KeyMaterialError("block key needs a uint8 mask and an int16 permutation")
        if self.mask.dim() != 3 or self.mask.shape != self.perm.shape:
            raise KeyMaterialError(
                f"block key mask and permutation must be equal (N, B, S) shapes, got "
                f"{tuple(self.mask.shape)} and {tuple(self.perm.shape)}"
            )
        if self.positions is not None and (
            self.positions.dtype != torch.int32 or self.positions.shape[0] != len(self)
        ):
            raise KeyMaterialError("block positions must be (N, B) int32, one row per key")

    def __len__(self) -> int:
        return self.mask.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> BlockKey:
        index = slice(index, index + 1) if isinstance(index, int) else index
        positions = self.positions[index] if self.positions is not None else None
        return BlockKey(self.mask[index], self.perm[index], positions)

    def to(self, device: torch.device | str) -> BlockKey:
        positions = self.positions.to(device) if self.positions is not None else None
        return BlockKey(self.mask.to(device), self.perm.to(device), positions)

    def to_bytes(self) -> bytes:
        """Stable serialisation: a magic line, then an npz of the key's arrays."""
        arrays = {"mask": self.mask, "perm": self.perm}
        if self.positions is not None:
            arrays["positions"] = self.positions
        return pack_arrays(_KEY_MAGIC, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockKey:
        tensors = unpack_arrays(data, _KEY_MAGIC, "block")
        try:
            positions = tensors.get("positions")
            if positions is not None and positions.dtype == torch.int16:
                positions = positions.int()  # key files written before positions became int32
            key = cls(tensors["mask"], tensors["perm"], positions)
        except (ValueError, KeyError) as exc:
            raise KeyMaterialError(f"not a keyless block key ({exc})") from None
        for name, order in (("symbol permutation", key.perm), ("block order", key.positions)):
            if order is not None and not _is_permutation(order):
                raise KeyMaterialError(f"damaged block key: its {name} is not a permutation")
        return key


def random_permutations(
    stream: ByteStream, rows: int, size: int, dtype: type[np.integer] = np.int16
) -> np.ndarray:
    """(rows, size) permutations: argsort of 64-bit keystream words (ties ~2^-50)."""
    scores = stream.read(rows * size * 8).view(np.uint64).reshape(rows, size)
    return np.argsort(scores, axis=1, kind="stable").astype(dtype)


class BlockCipher(CipherBase):
    """Shared mechanics; subclasses define ``block_size``, ``nibbles`` and ``_draw``."""

    name: ClassVar[str]
    nibbles: ClassVar[bool]
    commutes_with_moves: ClassVar[bool] = False  # a flip or shift cuts and reorders blocks
    block_size: int

    def _check_block_size(self) -> None:
        if not 1 <= self.block_size <= 16:
            raise ValueError(f"block_size must be in 1..16, got {self.block_size}")

    def symbols_per_block(self) -> int:
        return (6 if self.nibbles else 3) * self.block_size**2

    def blocks(self, height: int, width: int) -> int:
        return count_blocks(self.name, self.block_size, height, width)

    def keygen(
        self,
        n: int,
        size: tuple[int, int],
        source: KeySource | None = None,
        ids: list[str] | None = None,
        device: torch.device | str = "cpu",
    ) -> BlockKey:
        """Draw ``n`` keys for (H, W) images (``ids``: one stream per image, as for PE)."""
        source = source or CsprngSource()
        blocks = self.blocks(*size)
        if ids is not None and len(ids) != n:
            raise KeyMaterialError(f"{len(ids)} image ids given for {n} images")
        if ids is None:
            parts = [self._draw(source.stream(), n, blocks)]
        else:
            parts = [self._draw(source.stream(i), 1, blocks) for i in ids]
            parts = parts or [self._draw(source.stream(), 0, blocks)]
        mask, perm, positions = (
            None if parts[0][k] is None else np.concatenate([p[k] for p in parts]) for k in range(3)
        )
        return BlockKey(
            torch.from_numpy(mask).to(device),
            torch.from_numpy(perm).to(device),
            torch.from_numpy(positions).to(device) if positions is not None else None,
        )

    def _draw(
        self, stream: ByteStream, n: int, blocks: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def load_key(self, path: Path | str) -> BlockKey:
        return BlockKey.load(path)

    def encrypt(self, images: ImageLike, key: BlockKey) -> ImageLike:
        """Encrypt (N, H, W, 3) or (H, W, 3) uint8 images; a key with N == 1 is a common key."""
        return self._apply(images, key, inverse=False)

    def decrypt(self, images: ImageLike, key: BlockKey) -> ImageLike:
        """Exact inverse of :meth:`encrypt` under the same key."""
        return self._apply(images, key, inverse=True)

    def _apply(self, images: ImageLike, key: BlockKey, inverse: bool) -> ImageLike:
        batch, restore = to_batch(images)
        n, h, w, _ = batch.shape
        blocks, s = self.blocks(h, w), self.symbols_per_block()
        if len(key) not in (1, n) or key.mask.shape[1] not in (1, blocks) or key.mask.shape[2] != s:
            raise KeyMaterialError(
                f"{self.name} key of shape {tuple(key.mask.shape)} does not fit {n} images of "
                f"{h}x{w} ({blocks} blocks of {s} symbols; one key per image or one for all)"
            )
        if key.mask.device != batch.device:
            raise InputError(f"key is on {key.mask.device} but images are on {batch.device}")
        chunk_fn = self._invert_chunk if inverse else self._apply_chunk
        out = [
            chunk_fn(batch[i : i + _CHUNK], key if len(key) == 1 else key[i : i + _CHUNK])
            for i in range(0, n, _CHUNK)
        ]
        return restore(torch.cat(out) if out else batch.clone())

    def to_symbols(self, x: torch.Tensor) -> torch.Tensor:
        """(n, H, W, 3) -> (n, B, S): blocks in raster order, each block's values (or nibbles)."""
        n, h, w, _ = x.shape
        m = self.block_size
        x = x.view(n, h // m, m, w // m, m, 3).permute(0, 1, 3, 2, 4, 5).reshape(n, -1, 3 * m * m)
        return torch.stack([x >> 4, x & 15], -1).flatten(2) if self.nibbles else x

    def from_symbols(self, sym: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Inverse of :meth:`to_symbols`: (n, B, S) symbols -> (n, h, w, 3) uint8 images."""
        n, m = sym.shape[0], self.block_size
        if self.nibbles:
            sym = sym.reshape(n, sym.shape[1], -1, 2)
            sym = sym[..., 0] << 4 | sym[..., 1]
        x = sym.reshape(n, h // m, w // m, m, m, 3).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h, w, 3)

    def _apply_chunk(self, x: torch.Tensor, key: BlockKey) -> torch.Tensor:
        sym = self.to_symbols(x)
        n, b, s = sym.shape
        sym = torch.gather(sym ^ key.mask, 2, key.perm.long().expand(n, b, s))
        if key.positions is not None:
            sym = torch.gather(sym, 1, key.positions.long()[:, :, None].expand(n, b, s))
        return self.from_symbols(sym, *x.shape[1:3])

    def _invert_chunk(self, x: torch.Tensor, key: BlockKey) -> torch.Tensor:
        sym = self.to_symbols(x)
        n, b, s = sym.shape
        if key.positions is not None:
            index = key.positions.long()[:, :, None].expand(n, b, s)
            sym = torch.empty_like(sym).scatter_(1, index, sym)
        sym = torch.empty_like(sym).scatter_(2, key.perm.long().expand(n, b, s), sym) ^ key.mask
        return self.from_symbols(sym, *x.shape[1:3])


def _chunked(
    fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, size: int
) -> torch.Tensor:
    """``fn`` (images to images of the same shape) over slices of ``size`` images,
    concatenated: bounds the memory of its temporaries. An empty batch comes back as a copy."""
    if not len(images):
        return images.clone()
    return torch.cat([fn(images[i : i + size]) for i in range(0, len(images), size)])


def _bits(stream: ByteStream, count: int) -> np.ndarray:
    return uniform_bytes(stream.read, count, 2)


@dataclass(frozen=True)
class LearnableCipher(BlockCipher):
    """Tanaka's learnable encryption (LE): M x M blocks of 6 M^2 nibbles, each nibble inverted
    (15 - v) by a random bit and the nibbles of a block shuffled, one key for all blocks.

    Args:
        block_size: M (4 in Tanaka's CIFAR-10 experiments).
        per_block: a different key for every block (ELE) instead of one shared by all blocks.
        scramble: also permute block positions (ELE).
    """

    block_size: int = 4
    per_block: bool = False
    scramble: bool = False
    name: ClassVar[str] = "le"
    nibbles: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._check_block_size()

    def key_space_bits(self, height: int, width: int) -> float:
        """log2 of the number of keys for one H x W image (brute force)."""
        s, blocks = self.symbols_per_block(), self.blocks(height, width)
        per_key = math.lgamma(s + 1) / math.log(2) + s
        return (blocks if self.per_block else 1) * per_key + (
            math.lgamma(blocks + 1) / math.log(2) if self.scramble else 0.0
        )

    def key_invariant(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """What no key changes: (N, H, W, 3) uint8 ciphertexts -> (N, H, W, 3) uint8, the
        canonical nibbles below packed back into bytes and blocks (:meth:`from_symbols`).

        A key complements nibbles (v -> 15 - v) and permutes them within blocks. In the first
        two cases below the result is the image under one particular key (a mask, a
        permutation, a block order), so two images share it exactly when a key maps one to the
        other: the invariant is maximal.

        - a key per block (ELE): a block can become exactly the blocks with the same multiset of
          folds min(v, 15 - v), so each block's folds sorted (values 0..7); with ``scramble``
          every block order is reachable too, so the blocks are put in lexicographic order.
        - one key for all blocks, blocks in place (LE): seen as a (B, S) matrix of nibbles,
          the mask complements whole columns and the permutation permutes columns. Each
          column is turned so that its first nibble is at most 7 (exactly one of v and 15 - v
          is), then the columns are sorted lexicographically: equal results mean the same
          multiset of columns up to complement, i.e. the same orbit.
        - one key for all blocks with ``scramble`` (neither paper's setting): rows and columns
          both move, and a maximal invariant would be a canonical form of a matrix under row
          and column permutations (as hard as graph isomorphism); this gives ELE's invariant,
          which no key changes but which forgets how the blocks' nibbles line up.
        """
        h, w = ciphertexts.shape[1:3]
        self.blocks(h, w)
        return _chunked(
            lambda x: self.from_symbols(self._canonical(self.to_symbols(x)), h, w),
            ciphertexts,
            _CHUNK,
        )

    def _canonical(self, sym: torch.Tensor) -> torch.Tensor:
        """(n, B, S) nibbles -> (n, B, S) nibbles: :meth:`key_invariant`'s canonical form."""
        if self.per_block or self.scramble:
            folds = torch.minimum(sym, 15 - sym).sort(dim=-1).values
            return sort_rows(folds, bits=3)[0] if self.scramble else folds
        turned = torch.where(sym[:, :1] > 7, 15 - sym, sym)
        return sort_rows(turned.transpose(1, 2), bits=4)[0].transpose(1, 2)

    def _draw(
        self, stream: ByteStream, n: int, blocks: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        s, kb = self.symbols_per_block(), blocks if self.per_block else 1
        mask = (_bits(stream, n * kb * s) * 15).reshape(n, kb, s)
        perm = random_permutations(stream, n * kb, s).reshape(n, kb, s)
        positions = random_permutations(stream, n, blocks, np.int32) if self.scramble else None
        return mask, perm, positions


@dataclass(frozen=True)
class ExtendedLearnableCipher(LearnableCipher):
    """Extended LE (ELE): LE with a different key per block, plus block scrambling."""

    per_block: bool = True
    scramble: bool = True
    name: ClassVar[str] = "ele"


def _dihedral_colour_perms(m: int) -> np.ndarray:
    """(48, 3 m^2) permutations of a block's bytes: 8 rotations/flips x 6 colour orders."""
    index = np.arange(3 * m * m).reshape(m, m, 3)
    spatial = [np.rot90(index, k) for k in range(4)]
    spatial += [s[:, ::-1] for s in spatial]
    return np.stack(
        [s[..., list(order)].reshape(-1) for s in spatial for order in permutations(range(3))]
    ).astype(np.int16)


def _least_candidates(blocks: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(n, B, S) uint8 blocks, (K, S) int64 permutations -> (n, B, S) uint8: per block the
    lexicographic minimum of its K permutations, each inverted (255 - v) where its first byte
    is above 127 (the lesser of the two). Narrows the K candidates byte by byte."""
    flip = (blocks[:, :, table[:, 0]] > 127).byte() * 255  # (n, B, K): 255 inverts
    dead = torch.zeros_like(flip, dtype=torch.bool)
    for j in range(table.shape[1]):
        byte = (blocks[:, :, table[:, j]] ^ flip).masked_fill_(dead, 255)
        dead |= byte != byte.amin(-1, keepdim=True)
    best = dead.byte().argmin(-1, keepdim=True)  # (n, B, 1): one of the (equal) least ones
    return torch.gather(blocks, 2, table[best[..., 0]]) ^ torch.gather(flip, 2, best)


@dataclass(frozen=True)
class EtCCipher(BlockCipher):
    """Encryption-then-compression (EtC): block scrambling, then per block a rotation/flip, an
    inversion of every value (255 - v) by one random bit, and a colour-component shuffle.

    Args:
        block_size: M (4 here, to match the other CIFAR-10 baselines; 16 for JPEG use).
    """

    block_size: int = 4
    name: ClassVar[str] = "etc"
    nibbles: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self._check_block_size()

    def key_space_bits(self, height: int, width: int) -> float:
        """log2 of the number of keys for one H x W image (brute force)."""
        blocks = self.blocks(height, width)
        return math.lgamma(blocks + 1) / math.log(2) + blocks * math.log2(8 * 2 * 6)

    def key_invariant(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """What no key changes: (N, H, W, 3) uint8 ciphertexts -> (N, H, W, 3) uint8, every
        block replaced by the least of the blocks a key can make of it, the blocks then in
        lexicographic order.

        A key moves blocks and, per block, applies one of 48 byte permutations (8 rotations
        and flips x 6 colour orders, a group) and perhaps the inversion 255 - v (which commutes
        with them). A block can thus become exactly the 96 blocks t(b) and 255 - t(b); their
        lexicographic minimum names that set, and the sorted minima name the image up to any
        key. The result is the image under one particular key, so two images share it exactly
        when a key maps one to the other: the invariant is maximal. Of t(b) and 255 - t(b) the
        lesser is the one whose first byte is at most 127 (no byte equals its inverse), so only
        48 candidates per block are compared.
        """
        h, w = ciphertexts.shape[1:3]
        table = torch.from_numpy(_dihedral_colour_perms(self.block_size)).long()
        table = table.to(ciphertexts.device)

        def canonical(x: torch.Tensor) -> torch.Tensor:
            least = _least_candidates(self.to_symbols(x), table)
            return self.from_symbols(sort_rows(least)[0], h, w)

        size = max(1, _CANDIDATES // (self.blocks(h, w) * len(table)))
        return _chunked(canonical, ciphertexts, size)

    def _draw(
        self, stream: ByteStream, n: int, blocks: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        table = _dihedral_colour_perms(self.block_size)
        codes = uniform_bytes(stream.read, n * blocks, len(table))
        perm = table[codes].reshape(n, blocks, table.shape[1])
        inverted = _bits(stream, n * blocks).reshape(n, blocks, 1) * 255
        mask = np.broadcast_to(inverted, perm.shape).astype(np.uint8)
        return mask, perm, random_permutations(stream, n, blocks, np.int32)
