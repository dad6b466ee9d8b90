"""Datasets on disk, single images, and the one-call encrypted dataset wrapper (the owner's
upload, its manifest and its batch jobs: :mod:`keyless.upload`)."""

from keyless.data._datasets import (
    CIFAR10_CLASSES,
    ImageSet,
    adopt_classes,
    find_files,
    fingerprint,
    list_images,
    load_image_folder,
    load_npz,
    load_splits,
    load_stl10,
    save_npz,
    split_classes,
)
from keyless.data._download import DATA_ENV, download_cifar10, find_dataset
from keyless.data._io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, fit_image, read_image, write_png
from keyless.data._wrap import EncryptedDataset, encrypt_dataset

__all__ = [
    "CIFAR10_CLASSES",
    "DATA_ENV",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "EncryptedDataset",
    "ImageSet",
    "adopt_classes",
    "download_cifar10",
    "encrypt_dataset",
    "find_dataset",
    "find_files",
    "fingerprint",
    "fit_image",
    "list_images",
    "load_image_folder",
    "load_npz",
    "load_splits",
    "load_stl10",
    "read_image",
    "save_npz",
    "split_classes",
    "write_png",
]
