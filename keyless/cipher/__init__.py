"""Ciphers for images in one registry: the paper's pixel-based encryption (``pe``), PE with a
keyed block scramble (``pe-scramble``), and the block-wise baselines (``le``, ``ele``, ``etc``).

Every cipher has ``name``, ``commutes_with_moves``, ``settings()``,
``keygen(n, (H, W), source, ids, device)``, ``encrypt``, ``decrypt``, ``encrypt_fresh``, ``rekey``,
``key_space_bits(H, W)``, ``key_invariant(ciphertexts)`` (what every key leaves unchanged, or
``None``) and ``load_key(path)``; keys have ``save`` and ``to``."""

from functools import partial
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, ValidationError

from keyless._schema import build_dataclass, problem
from keyless.cipher._base import CipherBase
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
    options, each of its type, is a one-line :class:`ConfigError` that names ``where``."""
    try:
        return stored_cipher(settings)
    except ValidationError as exc:
        reason = problem(exc)
        raise ConfigError(f"{where}: not the settings of a keyless cipher ({reason})") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def stored_cipher(settings: Any, named: bool = False) -> Cipher:
    """:func:`cipher_from_settings` as a pydantic validator (a cipher passes as it is): its
    options checked by a strict schema of the cipher's fields; a wrong one raises ``ValueError``
    (a :class:`~pydantic.ValidationError` naming the option). ``named``: the name is required
    (a manifest always stores it; older records store ``{}`` for PE)."""
    if isinstance(settings, CipherBase):
        return settings  # type: ignore[return-value]
    if not isinstance(settings, dict):
        raise ValueError(f"expected the cipher's settings (an object), got {settings!r}")
    options = dict(settings)
    if named and "name" not in options:
        raise ValueError("no name: the settings of a cipher begin with its name")
    name = options.pop("name", "pe")
    if not isinstance(name, str):
        raise ValueError(f"expected the cipher's name (a string), got {name!r}")
    try:
        cipher_class = CIPHERS.get(name)
    except UnknownNameError as exc:
        raise ValueError(str(exc)) from None
    return build_dataclass(cipher_class, options)


def _settings(cipher: Cipher) -> dict[str, Any]:
    return cipher.settings()


# a cipher field of a stored file's schema: read from its settings, written as them
StoredCipher = Annotated[Cipher, PlainValidator(stored_cipher), PlainSerializer(_settings)]
NamedCipher = Annotated[
    Cipher, PlainValidator(partial(stored_cipher, named=True)), PlainSerializer(_settings)
]


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
    "NamedCipher",
    "PixelCipher",
    "PixelKey",
    "ScrambledKey",
    "ScrambledPixelCipher",
    "StoredCipher",
    "cipher_from_settings",
    "create_cipher",
    "list_ciphers",
    "stored_cipher",
]
