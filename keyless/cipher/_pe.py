"""Pixel-based encryption (PE): negative-positive inversion, then colour-component shuffling.

Each pixel's key is one of 48 transforms, stored as one byte ``code = 8 * perm + bits``: ``bits``
has bit ``c`` set when input component ``c`` is inverted (p -> 255 - p), and ``perm`` indexes
the paper's shuffle table (RGB, RBG, GRB, GBR, BRG, BGR). The 48 transforms form a group, so
decryption, re-keying and key composition are all the same kernel with another table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from keyless._imagetypes import ImageLike, to_batch
from keyless._lazy import torch
from keyless.cipher._base import CipherBase, KeyFile
from keyless.cipher._kernel import apply_transforms, uniform_bytes
from keyless.errors import InputError, KeyMaterialError
from keyless.invariant import fold, sorted_fold
from keyless.keys import ByteStream, CsprngSource, KeySource

PERMUTATIONS = tuple(permutations(range(3)))  # RGB, RBG, GRB, GBR, BRG, BGR: the paper's order
NUM_CODES = 8 * len(PERMUTATIONS)


def _code(src: tuple[int, ...], inverted: tuple[int, ...]) -> int:
    return 8 * PERMUTATIONS.index(tuple(src)) + sum(b << c for c, b in enumerate(inverted))


def _parts(code: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(src, inverted input components) of a code."""
    return PERMUTATIONS[code // 8], tuple((code >> c) & 1 for c in range(3))


def _build_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encryption rows, decryption rows, and the composition table ``then[a, b]``."""
    enc = np.zeros((NUM_CODES, 6), np.int64)
    inverse = np.zeros(NUM_CODES, np.int64)
    then = np.zeros((NUM_CODES, NUM_CODES), np.uint8)
    for code in range(NUM_CODES):
        src, inv = _parts(code)
        enc[code] = [*src, *(255 * inv[s] for s in src)]
        back = tuple(src.index(c) for c in range(3))  # output position of each input component
        inverse[code] = _code(back, tuple(inv[s] for s in src))
    for a in range(NUM_CODES):
        src_a, inv_a = _parts(a)
        for b in range(NUM_CODES):
            src_b, inv_b = _parts(b)
            # b after a: out[c] = p[src_a[src_b[c]]], inverted by inv_a of that source
            # component and by inv_b[src_b[c]]
            src = tuple(src_a[s] for s in src_b)
            flip = [0, 0, 0]
            for c in range(3):
                flip[src[c]] = inv_a[src[c]] ^ inv_b[src_b[c]]
            then[a, b] = _code(src, tuple(flip))
    return enc, enc[inverse], then


ENCRYPT_TABLE, DECRYPT_TABLE, COMPOSE_TABLE = _build_tables()
_KEY_MAGIC = b"KEYLESS-PIXELKEY-1\n"


@dataclass(frozen=True)
class PixelKey(KeyFile):
    """One PE key per image: ``codes`` is (N, H, W) uint8 in 0..47 (see the module docstring)."""

    codes: torch.Tensor
    magic: ClassVar[bytes] = _KEY_MAGIC
    bytes_per_pixel: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if self.codes.dtype != torch.uint8 or self.codes.dim() != 3:
            raise KeyMaterialError(f"key codes must be (N, H, W) uint8, got {self._describe()}")

    def _describe(self) -> str:
        return f"{tuple(self.codes.shape)} {self.codes.dtype}"

    @classmethod
    def from_parts(cls, inverted: torch.Tensor, perm: torch.Tensor) -> PixelKey:
        """Build from an (N, H, W, 3) bool inversion mask and (N, H, W) shuffle codes 0..5."""
        weights = torch.tensor([1, 2, 4], dtype=torch.uint8, device=inverted.device)
        bits = (inverted.to(torch.uint8) * weights).sum(-1, dtype=torch.uint8)
        return cls((perm.to(torch.uint8) * 8 + bits).contiguous())

    @property
    def inverted(self) -> torch.Tensor:
        """(N, H, W, 3) bool: which input components the NP step inverts."""
        shifts = torch.arange(3, dtype=torch.uint8, device=self.codes.device)
        return ((self.codes[..., None] >> shifts) & 1).bool()

    @property
    def perm(self) -> torch.Tensor:
        """(N, H, W) uint8 shuffle codes 0..5 in the paper's order."""
        return self.codes // 8

    def __len__(self) -> int:
        return self.codes.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> PixelKey:
        codes = self.codes[index]
        return PixelKey(codes[None] if codes.dim() == 2 else codes)

    def to(self, device: torch.device | str) -> PixelKey:
        return PixelKey(self.codes.to(device))

    def to_bytes(self) -> bytes:
        """Stable serialisation: a magic line, the shape line ``N H W``, then the code bytes."""
        n, h, w = self.codes.shape
        return _KEY_MAGIC + f"{n} {h} {w}\n".encode() + self.codes.cpu().numpy().tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> PixelKey:
        try:
            if not data.startswith(_KEY_MAGIC):
                raise ValueError("missing header")
            header, payload = data[len(_KEY_MAGIC) :].split(b"\n", 1)
            shape = tuple(int(v) for v in header.split())
            if len(shape) != 3 or min(shape) < 0:  # reshape would take -1 as "the rest"
                raise ValueError(f"its shape line {header.decode(errors='replace')!r} is not N H W")
            codes = np.frombuffer(payload, np.uint8).reshape(shape).copy()
        except ValueError as exc:
            raise KeyMaterialError(f"not a keyless pixel key ({exc})") from None
        if codes.size and codes.max() >= NUM_CODES:
            raise KeyMaterialError("not a keyless pixel key (code out of range)")
        return cls(torch.from_numpy(codes))


def _uniform_codes(stream: ByteStream, n: int) -> np.ndarray:
    """``n`` codes uniform on 0..47 (rejection sampling: no code is more likely than another)."""
    return uniform_bytes(stream.read, n, NUM_CODES)


@dataclass(frozen=True)
class PixelCipher(CipherBase):
    """The paper's pixel-based encryption, with the variants seen in the literature.

    Args:
        shuffle: shuffle each pixel's colour components (the paper's step 2).
        np_mode: ``"coin"`` (an independent fair bit per value, the paper) or ``"balanced"``
            (exactly half of each image's values inverted).
        np_per: ``"component"`` (one bit per colour value, the paper) or ``"pixel"`` (one bit
            shared by a pixel's three components).
        noise: standard deviation (grey levels) of the Gaussian noise the owner adds to every
            plain value before encrypting (:meth:`obscure`; 0: none). Decryption gives the
            noisy image back.
    """

    shuffle: bool = True
    np_mode: Literal["coin", "balanced"] = "coin"
    np_per: Literal["component", "pixel"] = "component"
    noise: float = 0.0
    name: ClassVar[str] = "pe"
    commutes_with_moves: ClassVar[bool] = True  # one key per pixel: the key moves with it

    def __post_init__(self) -> None:
        if self.np_mode not in ("coin", "balanced"):
            raise ValueError(f"np_mode must be 'coin' or 'balanced', got {self.np_mode!r}")
        if self.np_per not in ("component", "pixel"):
            raise ValueError(f"np_per must be 'component' or 'pixel', got {self.np_per!r}")
        if self.np_mode == "balanced" and self.np_per == "pixel":
            raise ValueError("np_mode='balanced' needs np_per='component'")
        if not 0 <= self.noise <= 255:
            raise ValueError(f"noise must be a standard deviation from 0 to 255, got {self.noise}")

    def settings(self) -> dict[str, Any]:
        """As every cipher's, less ``noise`` when there is none: manifests and records without
        noise stay readable by a keyless that predates it."""
        options = super().settings()
        if not self.noise:
            del options["noise"]
        return options

    def key_invariant(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """Every value's fold min(p, 255 - p) (inversion cannot change it), sorted within each
        pixel when the components are shuffled: all that an independent-key model can use, and
        what the invariant attack learns from."""
        return sorted_fold(ciphertexts) if self.shuffle else fold(ciphertexts)

    def key_space_bits(self, height: int, width: int) -> float:
        """log2 of the number of keys for one H x W image (brute force)."""
        n = height * width
        np_bits = 3 * n if self.np_per == "component" else n
        if self.np_mode == "balanced":
            np_bits = math.log2(math.comb(3 * n, 3 * n // 2))
        return np_bits + (n * math.log2(6) if self.shuffle else 0.0)

    def keygen(
        self,
        n: int,
        size: tuple[int, int],
        source: KeySource | None = None,
        ids: list[str] | None = None,
        device: torch.device | str = "cpu",
    ) -> PixelKey:
        """Draw ``n`` keys for (H, W) images.

        Args:
            n: number of images.
            size: (H, W).
            source: where randomness comes from; default the OS CSPRNG.
            ids: one id per image: each key then comes from its own stream ``source.stream(id)``
                (needed by master-key sources; makes seeded keys independent of batch order).
            device: where the key tensor lives.
        """
        source = source or CsprngSource()
        h, w = size
        if ids is not None and len(ids) != n:
            raise KeyMaterialError(f"{len(ids)} image ids given for {n} images")
        if ids is None:
            stream = source.stream()
            codes = _uniform_codes(stream, n * h * w)
            balanced = self._balanced_bits(stream, n, h * w) if self.np_mode == "balanced" else None
        else:
            streams = [source.stream(i) for i in ids]
            codes = np.concatenate(
                [_uniform_codes(s, h * w) for s in streams] or [np.zeros(0, np.uint8)]
            )
            balanced = (
                np.concatenate([self._balanced_bits(s, 1, h * w) for s in streams])
                if self.np_mode == "balanced" and n
                else None
            )
        codes = self._restrict(codes, balanced).reshape(n, h, w)
        return PixelKey(torch.from_numpy(codes).to(device))

    def _balanced_bits(self, stream: ByteStream, n: int, pixels: int) -> np.ndarray:
        """(n * pixels,) 3-bit masks with exactly half of each image's 3 * pixels bits set."""
        scores = stream.read(n * 3 * pixels * 4).view(np.uint32).reshape(n, 3 * pixels)
        order = np.argsort(scores, axis=1, kind="stable")
        bits = np.zeros((n, 3 * pixels), np.uint8)
        np.put_along_axis(bits, order[:, : 3 * pixels // 2], 1, axis=1)
        bits = bits.reshape(-1, 3)
        return bits[:, 0] | bits[:, 1] << 1 | bits[:, 2] << 2

    def _restrict(self, codes: np.ndarray, balanced: np.ndarray | None) -> np.ndarray:
        """Map uniform codes onto this variant's key set (no copy for the paper's default)."""
        if self.shuffle and self.np_per == "component" and balanced is None:
            return codes
        perm = codes // 8 if self.shuffle else np.zeros_like(codes)
        bits = codes % 8 if balanced is None else balanced
        if self.np_per == "pixel":
            bits = (bits & 1) * 7
        return perm * 8 + bits

    def load_key(self, path: Path | str) -> PixelKey:
        return PixelKey.load(path)

    def encrypt(self, images: ImageLike, key: PixelKey) -> ImageLike:
        """Encrypt (N, H, W, 3) or (H, W, 3) uint8 images (tensor, numpy or PIL) with ``key``.

        A key with N == 1 is a common key and applies to every image.
        """
        return self._apply(images, key, ENCRYPT_TABLE)

    def decrypt(self, images: ImageLike, key: PixelKey) -> ImageLike:
        """Exact inverse of :meth:`encrypt` under the same key."""
        return self._apply(images, key, DECRYPT_TABLE)

    def _apply(self, images: ImageLike, key: PixelKey, table: np.ndarray) -> ImageLike:
        batch, restore = to_batch(images)
        codes = _fit_key(key, batch)
        return restore(apply_transforms(batch, codes, table))

    def compose(self, first: PixelKey, then: PixelKey) -> PixelKey:
        """The key equal to encrypting with ``first`` and then with ``then``."""
        a, b = first.codes.long(), then.codes.long().to(first.codes.device)
        table = torch.from_numpy(COMPOSE_TABLE).to(first.codes.device)
        return PixelKey(table[a, b])


def _fit_key(key: PixelKey, batch: torch.Tensor) -> torch.Tensor:
    n, h, w, _ = batch.shape
    kn, kh, kw = key.codes.shape
    if (kh, kw) != (h, w) or kn not in (1, n):
        raise KeyMaterialError(
            f"key of shape {(kn, kh, kw)} does not fit images of shape {(n, h, w)}; "
            "a key needs the images' height and width and one entry per image (or one for all)"
        )
    if key.codes.device != batch.device:
        raise InputError(f"key is on {key.codes.device} but images are on {batch.device}")
    return key.codes.expand(n, h, w)
