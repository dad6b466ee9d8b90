"""The owner's side of a run: encrypt the training images once and hand the cloud ciphertexts.

Keys come from a seed recorded in the run, so an interrupted run resumes on the same ciphertexts
and ``keyless evaluate`` can rebuild a common key; in deployment the owner runs ``keyless
encrypt`` with CSPRNG keys instead. The cloud gets :class:`Upload`; it holds plain images and keys
only in the comparison setting where the owner augments before encrypting (``augment=client``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from keyless.cipher import Cipher, Key
from keyless.config import TrainConfig
from keyless.data import ImageSet
from keyless.errors import InputError
from keyless.keys import SeedSource


def derived_source(seed: int, purpose: str) -> SeedSource:
    """An independent seeded key source per purpose (owner's keys, test keys, re-keying...)."""
    return SeedSource(int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8]))


def split_data(splits: dict[str, ImageSet], config: TrainConfig) -> tuple[ImageSet, ImageSet]:
    """(train, test): the owner's training images (optionally the first N) and the test split."""
    if "train" not in splits or "test" not in splits:
        raise InputError(f"training needs train and test splits, found {', '.join(splits)}")
    train = splits["train"]
    if config.max_train_images:
        train = train.subset(slice(0, config.max_train_images))
    return train, splits["test"]


def owner_key(
    config: TrainConfig, cipher: Cipher, n: int, size: tuple[int, int], seed: int
) -> Key | None:
    """The owner's key for ``n`` training images: one common key, one key per image, or None."""
    if config.keys == "plain":
        return None
    return cipher.keygen(1 if config.keys == "common" else n, size, derived_source(seed, "owner"))


def hold_out(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation): ``size`` random uploaded images kept aside for validation
    (never the test set)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[size:], order[:size]


@dataclass
class ClientAugment:
    """The owner's plain images and keys, for encrypting every augmented batch itself."""

    images: torch.Tensor
    key: Key

    def encrypt(self, cipher: Cipher, batch: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Encrypt an augmented batch of the images at ``index`` under their own keys."""
        return cipher.encrypt(batch, self.key if len(self.key) == 1 else self.key[index])


@dataclass
class Upload:
    """What the cloud trains on: ``train`` (ciphertexts, plain for ``keys=plain``), a validation
    split carved from it, and the common key for the common-key test set (the ICIP setting)."""

    train: ImageSet
    val: ImageSet | None
    common_key: Key | None
    client: ClientAugment | None


def prepare_upload(train: ImageSet, config: TrainConfig, cipher: Cipher, seed: int) -> Upload:
    """Encrypt the training images once, carve the validation split, keep what the setting
    needs; after this the plain images are gone unless the owner augments (``client``)."""
    n, h, w, _ = train.images.shape
    key = owner_key(config, cipher, n, (h, w), seed)
    uploaded = train
    if key is not None:
        uploaded = ImageSet(cipher.encrypt(train.images, key), train.labels, train.classes)
    keep, val_index = hold_out(n, config.val_size, seed)
    client = None
    if config.augment == "client" and key is not None:
        client = ClientAugment(train.images[keep], key if len(key) == 1 else key[keep])
    return Upload(
        train=uploaded.subset(keep),
        val=uploaded.subset(val_index) if config.val_size else None,
        common_key=key if config.keys == "common" else None,
        client=client,
    )
