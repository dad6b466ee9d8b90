"""Datasets on disk, single images, and the one-call encrypted dataset wrapper."""

from keyless.data._datasets import (
    CIFAR10_CLASSES,
    ImageSet,
    adopt_classes,
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
from keyless.data._files import Job, KeyPlan, check_written, plan_jobs, run_jobs, transform_file
from keyless.data._io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, fit_image, read_image, write_png
from keyless.data._manifest import (
    MANIFEST,
    Manifest,
    check_decryption,
    check_resume,
    describe,
    load_received,
    upload_root,
)
from keyless.data._wrap import EncryptedDataset, encrypt_dataset

__all__ = [
    "CIFAR10_CLASSES",
    "DATA_ENV",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "MANIFEST",
    "EncryptedDataset",
    "ImageSet",
    "Job",
    "KeyPlan",
    "Manifest",
    "adopt_classes",
    "check_decryption",
    "check_resume",
    "check_written",
    "describe",
    "download_cifar10",
    "encrypt_dataset",
    "find_dataset",
    "fingerprint",
    "fit_image",
    "list_images",
    "load_image_folder",
    "load_npz",
    "load_received",
    "load_splits",
    "load_stl10",
    "plan_jobs",
    "read_image",
    "run_jobs",
    "save_npz",
    "split_classes",
    "transform_file",
    "upload_root",
    "write_png",
]
