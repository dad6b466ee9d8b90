"""Ciphers for images: the paper's pixel-based encryption (PE) in a registry."""

from typing import Any

from keyless.cipher._pe import NUM_CODES, PERMUTATIONS, PixelCipher, PixelKey
from keyless.registry import Registry

CIPHERS: Registry[Any] = Registry("cipher")
CIPHERS.register("pe")(PixelCipher)


def create_cipher(name: str = "pe", **kwargs: Any) -> Any:
    """Build a registered cipher; ``None`` keyword arguments keep the defaults."""
    return CIPHERS.create(name, **kwargs)


def list_ciphers() -> list[str]:
    return CIPHERS.names()


__all__ = [
    "CIPHERS",
    "NUM_CODES",
    "PERMUTATIONS",
    "PixelCipher",
    "PixelKey",
    "create_cipher",
    "list_ciphers",
]
