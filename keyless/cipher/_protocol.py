"""What every cipher and key in the registry provides (code outside ``keyless.cipher`` uses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

from keyless._imagetypes import ImageLike
from keyless._lazy import torch
from keyless.keys import KeySource


class Key(Protocol):
    """Keys for N images (N == 1: a common key for any number)."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int | slice | torch.Tensor) -> Key: ...
    def to(self, device: torch.device | str) -> Key: ...
    def to_bytes(self) -> bytes: ...
    def save(self, path: Path | str) -> None: ...


class Cipher(Protocol):
    """An exactly invertible, shape- and dtype-preserving transform of uint8 NHWC images."""

    name: ClassVar[str]
    # True when flipping or shifting a ciphertext equals encrypting the moved image under the
    # moved key (per-pixel keys, as PE); block-wise ciphers break when a move cuts their blocks.
    commutes_with_moves: ClassVar[bool]

    def settings(self) -> dict[str, Any]: ...
    def keygen(
        self,
        n: int,
        size: tuple[int, int],
        source: KeySource | None = None,
        ids: list[str] | None = None,
        device: torch.device | str = "cpu",
    ) -> Key: ...
    def encrypt(self, images: ImageLike, key: Key) -> ImageLike: ...
    def decrypt(self, images: ImageLike, key: Key) -> ImageLike: ...
    def encrypt_fresh(
        self,
        images: ImageLike,
        source: KeySource | None = None,
        ids: list[str] | None = None,
    ) -> tuple[ImageLike, Key]: ...
    def rekey(
        self, ciphertexts: ImageLike, source: KeySource | None = None
    ) -> tuple[ImageLike, Key]: ...
    def key_space_bits(self, height: int, width: int) -> float: ...
    def key_invariant(self, ciphertexts: torch.Tensor) -> torch.Tensor | None: ...
    def load_key(self, path: Path | str) -> Key: ...
