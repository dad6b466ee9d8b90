"""Ciphers for images in one registry: the paper's pixel-based encryption (``pe``), PE with a
keyed block scramble (``pe-scramble``), and the block-wise baselines (``le``, ``ele``, ``etc``).

Every cipher has ``name``, ``commutes_with_moves``, ``settings()``,
``keygen(n, (H, W), source, ids, device)``, ``encrypt``, ``decrypt``, ``encrypt_fresh``, ``rekey``,
``key_space_bits(H, W)``, ``key_invariant(ciphertexts)`` (what every key leaves unchanged, or
``None``) and ``load_key(path)``; keys have ``save`` and ``to``."""

from typing import Any

from keyless.cipher._block import (
    BlockCipher,
    BlockKey,
    EtCCipher,
    ExtendedLearnableCipher,
    LearnableCipher,
)
from keyless.cipher._pe import NUM_CODES, PERMUTATIONS, PixelCipher, PixelKey
from keyless.cipher._protocol import Cipher, Key
from keyless.cipher._scramble import ScrambledKey, ScrambledPixelCipher
from keyless.registry import Registry

CIPHERS: Registry[Cipher] = Registry("cipher")
CIPHERS.register("pe")(PixelCipher)
CIPHERS.register("pe-scramble")(ScrambledPixelCipher)
CIPHERS.register("le")(LearnableCipher)
CIPHERS.register("ele")(ExtendedLearnableCipher)
CIPHERS.register("etc")(EtCCipher)


def create_cipher(name: str = "pe", **kwargs: Any) -> Cipher:
    """Build a registered cipher; ``None`` keyword arguments keep the defaults.

    The inverse of ``Cipher.settings()``: ``create_cipher(**cipher.settings()) == cipher``, and
    ``create_cipher(**{})`` is the default PE (as stored for older runs).
    """
    return CIPHERS.create(name, **kwargs)


def list_ciphers() -> list[str]:
    return CIPHERS.names()


__all__ = [
    "CIPHERS",
    "NUM_CODES",
    "PERMUTATIONS",
    "BlockCipher",
    "BlockKey",
    "Cipher",
    "EtCCipher",
    "ExtendedLearnableCipher",
    "Key",
    "LearnableCipher",
    "PixelCipher",
    "PixelKey",
    "ScrambledKey",
    "ScrambledPixelCipher",
    "create_cipher",
    "list_ciphers",
]
