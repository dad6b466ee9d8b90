"""The owner's side of a run: encrypt the training images once and hand the cloud ciphertexts.

Keys come from a seed recorded in the run, so an interrupted run resumes on the same ciphertexts
and ``keyless evaluate`` can rebuild a common key; in deployment the owner runs ``keyless
encrypt`` with CSPRNG keys instead and the cloud trains on that upload (:func:`receive_upload`).
The cloud gets :class:`Upload`; it holds plain images and keys only in the comparison setting
where the owner augments before encrypting (``augment=client``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from keyless.cipher import Cipher, Key
from keyless.data import ImageSet, fingerprint
from keyless.errors import ConfigError, InputError
from keyless.keys import SeedSource
from keyless.runs import TrainConfig, adapter_block_size
from keyless.upload._manifest import Manifest, cipher_text
from keyless.upload._shards import ShardSet

PLAIN_SOURCE = "plain images (a simulated owner)"


def derived_source(seed: int, purpose: str) -> SeedSource:
    """An independent seeded key source per purpose (owner's keys, test keys, re-keying...)."""
    return SeedSource(int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8]))


def split_data(
    splits: dict[str, ImageSet | ShardSet], config: TrainConfig
) -> tuple[ImageSet | ShardSet, ImageSet | ShardSet]:
    """(train, test): the owner's training images (optionally the first N) and the test split,
    in memory or left on disk as they were given."""
    if "train" not in splits or "test" not in splits:
        raise InputError(f"a run needs train and test splits, found {', '.join(splits)}")
    train = splits["train"]
    h, w = train.image_size
    if config.cutout > min(h, w):
        raise ConfigError(f"a cutout of {config.cutout} pixels does not fit {h}x{w} images")
    block = adapter_block_size(config)
    if config.adapt == "block" and (h % block or w % block):
        raise ConfigError(f"--adapt block works on {block}x{block} blocks: {h}x{w} images "
                          "do not divide into them")  # fmt: skip
    if config.max_train_images is not None:
        train = train.head(config.max_train_images)
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
    if size >= n:
        raise ConfigError(f"val_size {size} leaves none of the {n} training images to train on")
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

    train: ImageSet | ShardSet
    val: ImageSet | None
    common_key: Key | None
    client: ClientAugment | None


def data_source(manifest: Manifest | None, splits: dict[str, ImageSet]) -> str:
    """What a run trains on, as its checkpoint and record say (a resume must find the same): an
    owner's upload by its payload hash, or the simulated owner's plain images by theirs."""
    if manifest is not None:
        return f"the upload with payload sha256 {manifest.payload_sha256}"
    return f"{PLAIN_SOURCE} with sha256 {fingerprint(splits)}"


def upload_config(config: TrainConfig, manifest: Manifest) -> TrainConfig:
    """``config``, checked for training on an owner's upload: a one-line error for a key mode or
    a cipher other than the upload's, and for options that need plain images or keys the cloud
    does not have."""
    keys = "common" if manifest.keys == "common" else "independent"
    if config.keys != keys:
        raise ConfigError(
            f"the upload holds {manifest.keys}-key ciphertexts: --keys {config.keys} does not "
            f"fit (use --keys {keys})"
        )
    if config.cipher != manifest.cipher:
        raise ConfigError(
            f"the upload holds ciphertexts of cipher {cipher_text(manifest.cipher)}: --cipher "
            f"{cipher_text(config.cipher)} does not fit (train with the upload's cipher)"
        )
    if config.augment == "client":
        raise ConfigError("--augment client needs the owner's plain images; an upload has none")
    return config


def receive_upload(train: ImageSet | ShardSet, config: TrainConfig, seed: int) -> Upload:
    """An owner's upload as the cloud gets it: ciphertexts already, under keys it never sees;
    only the validation split is carved (from an upload left on disk: whole shards, read into
    memory)."""
    if isinstance(train, ShardSet):
        if not config.val_size:
            return Upload(train=train, val=None, common_key=None, client=None)
        rest, val = train.hold_out(config.val_size, seed)
        return Upload(train=rest, val=val.load(), common_key=None, client=None)
    keep, val_index = hold_out(len(train), config.val_size, seed)
    val = train.subset(val_index) if config.val_size else None
    return Upload(train=train.subset(keep), val=val, common_key=None, client=None)


def prepare_upload(train: ImageSet, config: TrainConfig, cipher: Cipher, seed: int) -> Upload:
    """Encrypt the training images once, carve the validation split, keep what the setting
    needs; after this the plain images are gone unless the owner augments (``client``)."""
    n, h, w, _ = train.images.shape
    key = owner_key(config, cipher, n, (h, w), seed)
    uploaded = train
    if key is not None:
        plain = cipher.obscure(train.images, derived_source(seed, "noise"))
        uploaded = ImageSet(cipher.encrypt(plain, key), train.labels, train.classes)
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
