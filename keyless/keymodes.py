"""The one vocabulary of key modes: how each image gets its key, named the same way by ``keyless
encrypt``, ``decrypt``, ``train`` and ``attack`` and by an upload's manifest.

- ``plain``: no encryption (a run's plain baseline);
- ``independent``: a fresh key per image from the OS CSPRNG, thrown away (the method);
- ``common``: one key shared by every image, kept in a key file (the weak ICIP setting);
- ``master-key``: a key per image derived from a kept master secret and the image's name;
- ``seed``: a key per image from a seed and the image's name (reproducible experiments).

Each use takes some of them (:data:`KEY_MODES_OF`); :func:`key_mode` checks a name against it.
A leaf module (no numpy, no cryptography), so that the command line can offer the names at once.
"""

from typing import Literal, get_args

from keyless.errors import ConfigError

KeyMode = Literal["plain", "independent", "common", "master-key", "seed"]
KEY_MODES: tuple[KeyMode, ...] = get_args(KeyMode)

KEY_MODES_OF: dict[str, tuple[KeyMode, ...]] = {
    "train": ("plain", "independent", "common"),  # a simulated owner's keys, all from the seed
    "encrypt": ("independent", "common", "master-key", "seed"),  # what an upload's manifest says
    "decrypt": ("common", "master-key", "seed"),  # independent keys were thrown away
    "attack": ("independent", "common"),  # how the victims' images were encrypted
}


def key_mode(value: str, use: str) -> KeyMode:
    """``value`` if ``use`` (a key of :data:`KEY_MODES_OF`) takes that key mode, else a one-line
    :class:`ConfigError` naming the modes it takes."""
    allowed = KEY_MODES_OF[use]
    if value not in allowed:
        raise ConfigError(f"keys must be one of {', '.join(allowed)} for {use}, got {value!r}")
    return value
