"""What every cipher does the same way, written once: its settings and encryption under fresh keys;
and what every key does the same way: its file.

Ciphers are frozen dataclasses whose fields are their options; they mix ``CipherBase`` in. Keys
mix ``KeyFile`` in.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any, ClassVar, Self
from zipfile import BadZipFile

import numpy as np
from numpy.lib.npyio import NpzFile

from keyless._atomic import write_bytes_atomic
from keyless._imagetypes import ImageLike, to_batch
from keyless._lazy import torch
from keyless.cipher._protocol import Cipher, Key
from keyless.errors import InputError, KeyMaterialError
from keyless.keys import CsprngSource, KeySource, SeedSource, read_key_file

MAX_SIDE = 16384  # pixels: the largest image side a key file is made for (``keygen --size``)


class KeyFile:
    """``save`` and ``load`` on top of a key's ``to_bytes``/``from_bytes``: the file is written
    atomically and owner-only, and a file that is not a key gives one line naming it.

    Each key class names the ``magic`` its files begin with and its file's ``bytes_per_pixel``
    (at most, for one image): ``load`` reads no file larger than a key for one image of
    ``MAX_SIDE`` x ``MAX_SIDE`` pixels.
    """

    magic: ClassVar[bytes]
    bytes_per_pixel: ClassVar[int]

    def to_bytes(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        raise NotImplementedError

    def save(self, path: Path | str) -> None:
        write_bytes_atomic(path, self.to_bytes(), mode=0o600)

    @classmethod
    def max_file_bytes(cls) -> int:
        """The largest file ``load`` reads: a key for one ``MAX_SIDE``-sided square image, with
        room for its magic, shape line or npz headers."""
        return cls.bytes_per_pixel * MAX_SIDE**2 + 2**16

    @classmethod
    def load(cls, path: Path | str) -> Self:
        data = read_key_file(path, cls.max_file_bytes(), "key", cls.magic)
        try:
            return cls.from_bytes(data)
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{path}: {exc}") from None


def count_blocks(name: str, m: int, height: int, width: int) -> int:
    """How many ``m`` x ``m`` blocks tile an (H, W) image; a one-line error naming cipher ``name``
    when they do not."""
    if height % m or width % m:
        raise InputError(f"{name} needs image sides divisible by the block size {m}, "
                         f"got {height}x{width}")  # fmt: skip
    return (height // m) * (width // m)


def pack_arrays(magic: bytes, arrays: dict[str, torch.Tensor]) -> bytes:
    """A key file's bytes: the ``magic`` line, then an npz of ``arrays``."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: array.cpu().numpy() for name, array in arrays.items()})
    return magic + buffer.getvalue()


def unpack_arrays(data: bytes, magic: bytes, kind: str) -> dict[str, torch.Tensor]:
    """The arrays of :func:`pack_arrays` bytes (never unpickled); one-line error otherwise."""
    if not data.startswith(magic):
        raise KeyMaterialError(f"not a keyless {kind} key (missing header)")
    try:
        arrays = np.load(io.BytesIO(data[len(magic) :]), allow_pickle=False)
        if not isinstance(arrays, NpzFile):
            raise ValueError("not an npz archive")
        with arrays:
            return {name: torch.from_numpy(arrays[name].copy()) for name in arrays.files}
    except (ValueError, OSError, EOFError, BadZipFile) as exc:
        raise KeyMaterialError(f"not a keyless {kind} key ({exc})") from None


class CipherBase:
    """``settings``, ``encrypt_fresh`` and ``rekey`` on top of a cipher's ``keygen``/``encrypt``."""

    name: ClassVar[str]
    commutes_with_moves: ClassVar[bool]

    def settings(self) -> dict[str, Any]:
        """``{"name": ..., **options}``, JSON-able; ``cipher_from_settings`` rebuilds it."""
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"name": self.name, **options}

    def encrypt_fresh(
        self: Cipher,
        images: ImageLike,
        source: KeySource | None = None,
        ids: list[str] | None = None,
    ) -> tuple[ImageLike, Key]:
        """Encrypt N images under N new keys.

        Args:
            images: (N, H, W, 3) or (H, W, 3) uint8 (tensor, numpy or PIL); given back in kind.
            source: where the keys come from; default the OS CSPRNG.
            ids: one id per image, each key then drawn from its own stream (see ``keygen``).

        Returns:
            (ciphertexts, keys), the keys on the images' device.
        """
        batch, restore = to_batch(images)
        return self._encrypt_new_keys(self.obscure(batch, source), source, ids, restore)

    def _encrypt_new_keys(
        self: Cipher, batch: torch.Tensor, source: KeySource | None, ids: list[str] | None, restore
    ) -> tuple[ImageLike, Key]:
        n, h, w, _ = batch.shape
        key = self.keygen(n, (h, w), source, ids, device=batch.device)
        return restore(self.encrypt(batch, key)), key

    def obscure(self, images: torch.Tensor, source: KeySource | None = None) -> torch.Tensor:
        """What the owner does to (N, H, W, 3) uint8 plain images before encrypting them: add
        Gaussian noise of standard deviation ``noise`` grey levels to every value (rounded,
        clipped to 0..255) when the cipher has a ``noise`` option above 0, else nothing.

        Noise is not a key and nobody can take it off: decryption gives the noisy image back.
        It comes from the OS CSPRNG, or from a seeded source's next stream (experiments).
        """
        noise = getattr(self, "noise", 0.0)
        if not noise:
            return images
        stream = (source if isinstance(source, SeedSource) else CsprngSource()).stream()
        seed = int.from_bytes(stream.read(8).tobytes(), "little") >> 1
        z = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)) * noise
        noisy = images.float() + z.to(images.device)
        return noisy.round_().clamp_(0, 255).to(torch.uint8)

    def key_invariant(self, ciphertexts: torch.Tensor) -> torch.Tensor | None:
        """What every key leaves unchanged, (N, H, W, C) uint8, or ``None`` where none is known
        (an attacker then learns from the ciphertext itself)."""
        return None

    def rekey(
        self: Cipher, ciphertexts: ImageLike, source: KeySource | None = None
    ) -> tuple[ImageLike, Key]:
        """Encrypt ciphertexts again under fresh keys; returns them and the fresh keys.

        Each cipher's keys form a group, so the result is distributed like a fresh encryption
        (for PE, ``decrypt(result, compose(old_key, fresh))`` is the plain image); PE's balanced
        keys are the exception (two compose to an unbalanced one), so training refuses them.
        """
        batch, restore = to_batch(ciphertexts)
        return self._encrypt_new_keys(batch, source, None, restore)  # noise is the owner's only
