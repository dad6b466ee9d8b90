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
from keyless.errors import ConfigError, UnknownNameError
from keyless.registry import Registry

CIPHERS: Registry[Cipher] = Registry("cipher")
CIPHERS.register("pe")(PixelCipher)
CIPHERS.register("pe-scramble")(ScrambledPixelCipher)
CIPHERS.register("le")(LearnableCipher)
CIPHERS.register("ele")(ExtendedLearnableCipher)
CIPHERS.register("etc")(EtCCipher)


def create_cipher(name: str = "pe", **kwargs: Any) -> Cipher:
    """Build a registered cipher; ``None`` keyword arguments keep the defaults.

    A cipher's stored ``settings()`` are read back by :func:`cipher_from_settings`.
    """
    return CIPHERS.create(name, **kwargs)


def cipher_from_settings(settings: dict[str, Any], where: str = "cipher") -> Cipher:
    """The cipher a ``settings()`` dict describes (as stored in a manifest, a record or a
    checkpoint): the one place that builds a cipher from one, the inverse of ``settings()``.
    ``{}`` is the default PE (older runs). Anything else than a dict of a known name and its
    options is a one-line :class:`ConfigError` that names ``where``."""
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected the cipher's settings (an object), got {settings!r}")
    try:
        return create_cipher(**settings)
    except UnknownNameError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not the settings of a keyless cipher ({exc})") from None


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
    "cipher_from_settings",
    "create_cipher",
    "list_ciphers",
]
