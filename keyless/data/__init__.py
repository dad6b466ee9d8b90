"""Datasets on disk, single images, and the one-call encrypted dataset wrapper (the owner's
upload, its manifest and its batch jobs: :mod:`keyless.upload`).

Names load their module on first use (as :mod:`keyless` does), so that light callers (the
command line's option defaults) need not wait for torch.
"""

from __future__ import annotations

from keyless._lazy import lazy_exports

_EXPORTS = {
    "keyless.data._datasets": (
        "CIFAR10_CLASSES",
        "ImageSet",
        "adopt_classes",
        "classes_text",
        "find_files",
        "fingerprint",
        "list_images",
        "load_image_folder",
        "load_npz",
        "load_splits",
        "load_stl10",
        "save_npz",
        "split_classes",
    ),
    "keyless.data._download": ("DATA_ENV", "download_cifar10", "find_dataset"),
    "keyless.data._io": (
        "DEFAULT_MAX_PIXELS",
        "IMAGE_SUFFIXES",
        "fit_image",
        "read_image",
        "write_png",
    ),
    "keyless.data._wrap": ("EncryptedDataset", "encrypt_dataset"),
}
__getattr__, __dir__, __all__ = lazy_exports(globals(), _EXPORTS)
