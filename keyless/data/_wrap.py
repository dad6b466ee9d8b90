"""One call to encrypt a user's own map-style dataset (in the spirit of Opacus's make_private)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from keyless.cipher import Cipher, PixelCipher
from keyless.errors import InputError
from keyless.keys import CsprngSource, KeySource, MasterKeySource


class EncryptedDataset(Dataset):
    """Yields ``(transform(encrypted image), label...)`` for every item of a wrapped dataset."""

    def __init__(
        self,
        dataset: Dataset,
        cipher: Cipher,
        source: KeySource,
        fresh: bool,
        transform: Callable[[torch.Tensor], Any] | None,
    ) -> None:
        self.dataset, self.cipher, self.fresh, self.transform = dataset, cipher, fresh, transform
        # Fixed keys from the CSPRNG come from a secret that lives only as long as this wrapper.
        if not fresh and not source.reproducible:
            source = MasterKeySource(os.urandom(32))
        self.source = source
        self._accesses = 0  # an int, not itertools.count: workers get pickled copies

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self.dataset[index]
        image, rest = (item[0], tuple(item[1:])) if isinstance(item, tuple) else (item, ())
        image = _as_uint8_hwc(image, index)
        encrypted, _ = self.cipher.encrypt_fresh(image, self.source, ids=[self._image_id(index)])
        return (self.transform(encrypted) if self.transform else encrypted, *rest)

    def _image_id(self, index: int) -> str:
        """The id a reproducible source keys this access by: the index for fixed keys; for
        fresh ones, the access itself. Each DataLoader worker holds a copy of this wrapper, so
        its torch seed (new each epoch and per worker) keeps copies from repeating keys."""
        if not self.fresh:
            return str(index)
        worker = torch.utils.data.get_worker_info()
        self._accesses += 1
        return f"fresh/{worker.seed if worker else 'main'}/{self._accesses}"


def _as_uint8_hwc(image: Any, index: int) -> torch.Tensor:
    if isinstance(image, Image.Image):  # np.array, not asarray: torch warns on read-only arrays
        image = np.array(image.convert("RGB") if image.mode in ("L", "1", "P") else image)
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not (
        isinstance(image, torch.Tensor)
        and image.dtype == torch.uint8
        and image.dim() == 3
        and image.shape[-1] == 3
    ):
        got = f"{image.dtype} {tuple(image.shape)}" if hasattr(image, "shape") else type(image)
        raise InputError(
            f"item {index}: expected an (H, W, 3) uint8 image or RGB PIL image, got {got}; "
            "move ToTensor/Normalize from the dataset to encrypt_dataset(transform=...) "
            "so they run after encryption"
        )
    return image


def encrypt_dataset(
    dataset: Dataset,
    *,
    cipher: Cipher | None = None,
    source: KeySource | None = None,
    fresh_keys: bool = False,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> EncryptedDataset:
    """Wrap a map-style dataset of images so that every item comes out encrypted.

    Args:
        dataset: yields images (PIL RGB, or (H, W, 3) uint8 array/tensor), alone or as the first
            element of a tuple (the rest, e.g. the label, passes through).
        cipher: default the paper's PE.
        source: key randomness; default the OS CSPRNG.
        fresh_keys: ``False``: one key per index, fixed for the life of the wrapper (the owner
            encrypts once). ``True``: a new key on every access (re-keying as augmentation).
        transform: applied to the encrypted (H, W, 3) uint8 tensor, e.g. conversion to float.

    The first item is checked up front, so a wrong dataset fails here and not mid-training. The
    wrapper works under a DataLoader's worker processes (forked or spawned); fixed keys are the
    same in every worker.
    """
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise InputError(f"expected a map-style dataset, got {type(dataset).__name__}")
    wrapped = EncryptedDataset(
        dataset, cipher or PixelCipher(), source or CsprngSource(), fresh_keys, transform
    )
    if len(dataset):
        wrapped[0]
    return wrapped
