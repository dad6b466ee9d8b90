"""keyless: deep learning on images encrypted with pixel-based encryption, with no key to manage.

The public functions and classes are importable from here; each loads its subpackage on first
use, so ``import keyless`` stays light (torch and numba load when needed, the web service only
from :mod:`keyless.serve`).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from keyless._lazy import lazy_exports

_EXPORTS = {
    "keyless.attacks": ("create_attack", "list_attacks", "run_attacks"),
    "keyless.cipher": ("Cipher", "Key", "PixelCipher", "create_cipher", "list_ciphers"),
    "keyless.data": ("EncryptedDataset", "encrypt_dataset", "load_image_folder", "load_npz"),
    "keyless.errors": (
        "ConfigError",
        "InputError",
        "KeyMaterialError",
        "KeylessError",
        "OutputError",
        "UnknownNameError",
    ),
    "keyless.evaluate": ("predict",),
    "keyless.invariant": ("fold", "sorted_fold"),
    "keyless.keys": ("CsprngSource", "KeySource", "MasterKeySource", "SeedSource"),
    "keyless.models": ("Classifier", "create_model", "list_models"),
    "keyless.runs": ("TrainConfig", "evaluate_run", "load_run"),
    "keyless.train": ("recipe",),
}  # not train() nor evaluate(): keyless.train and keyless.evaluate are their modules


def _version() -> str:
    """The installed distribution's version, else (a source tree on sys.path) pyproject's."""
    try:
        return metadata.version("keyless")
    except metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return "0+unknown"


__version__ = _version()
__getattr__, __dir__, _names = lazy_exports(globals(), _EXPORTS)
__all__ = ["__version__", *_names]
