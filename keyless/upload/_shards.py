"""The sharded upload format: fixed-size shards of ciphertexts, for uploads too large for one
file per image.

A shard ``<split>-<index>.npz`` (index from ``000000``) is an uncompressed npz, numpy's zip of
``.npy`` arrays with its members stored and fixed timestamps (the same images make the same
bytes): ``images`` (N, H, W, 3) uint8 ciphertexts, ``labels`` (N,) int64 indices into the
manifest's classes and ``ids`` (N,) str, the image ids their keys follow. The manifest lists
every shard (file, split, image count, SHA-256); a reader checks each shard against its hash as
it reads it, so a damaged, missing or foreign shard is refused in one line naming it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keyless.data import ImageSet
from keyless.errors import ConfigError, InputError

MEMBERS = ("images", "labels", "ids")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no clock in the bytes


def shard_name(split: str, index: int) -> str:
    """The file name of a split's ``index``-th shard."""
    return f"{split}-{index:06d}.npz"


def shard_bytes(images: np.ndarray, labels: np.ndarray, ids: list[str]) -> bytes:
    """A shard's file contents: (N, H, W, 3) uint8 ``images``, (N,) ``labels``, ``ids``."""
    buffer = io.BytesIO()
    arrays = (images, labels.astype(np.int64), np.array(ids, dtype=str))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in zip(MEMBERS, arrays, strict=True):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.create_system = 3  # the same bytes on every system
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def entry(file: str, split: str, data: bytes, count: int) -> dict[str, Any]:
    """A shard's line in the manifest."""
    return {"file": file, "split": split, "images": count,
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def shards_hash(entries: list[dict[str, Any]]) -> str:
    """The payload hash of a sharded upload: SHA-256 over each shard's file name and hash."""
    digest = hashlib.sha256()
    for shard in entries:
        digest.update(f"{shard['file']}\0{shard['sha256']}\n".encode())
    return digest.hexdigest()


def parse_shard(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images, labels, ids) from a shard's bytes; a one-line :class:`InputError` starting
    with ``where`` if they are not a shard."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if sorted(arrays.files) != sorted(MEMBERS):
                raise ValueError(f"members {', '.join(arrays.files) or 'none'}")
            images, labels, ids = (arrays[name] for name in MEMBERS)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{where}: not a keyless shard ({exc})") from None
    n = len(images)
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3
            or labels.dtype != np.int64 or labels.shape != (n,) or ids.shape != (n,)
            or ids.dtype.kind != "U"):  # fmt: skip
        raise InputError(
            f"{where}: not a keyless shard (images {images.dtype} {images.shape}, labels "
            f"{labels.dtype} {labels.shape}, ids {ids.dtype} {ids.shape})"
        )
    return images, labels, ids.tolist()


def read_shard(
    folder: Path, shard: dict[str, Any], classes: int, size: list[int] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A shard the manifest lists, checked against its hash, image count, the upload's
    ``size`` (H, W) and its number of ``classes``: (images, labels, ids)."""
    path = folder / shard["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: missing (the upload's manifest lists this shard)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read this shard ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != shard["sha256"]:
        raise InputError(f"{path}: does not match its SHA-256 in the upload's manifest (a "
                         "damaged shard, or one from another upload)")  # fmt: skip
    images, labels, ids = parse_shard(data, str(path))
    if len(images) != shard["images"] or (size and list(images.shape[1:3]) != list(size)):
        raise InputError(f"{path}: holds {len(images)} images of {images.shape[1:3]}, the "
                         f"manifest says {shard['images']} of {size}")  # fmt: skip
    if len(labels) and not 0 <= labels.min() <= labels.max() < classes:
        raise InputError(f"{path}: labels outside the manifest's {classes} classes")
    return images, labels, ids


def iter_shards(
    folder: Path, entries: list[dict[str, Any]], classes: int, size: list[int] | None
) -> Iterator[tuple[dict[str, Any], np.ndarray, np.ndarray, list[str]]]:
    """Each listed shard in turn, read and checked (:func:`read_shard`), with its entry: one
    shard in memory at a time."""
    for shard in entries:
        yield shard, *read_shard(folder, shard, classes, size)


def shard_sets(
    folder: Path, entries: list[dict[str, Any]], classes: list[str], size: list[int]
) -> dict[str, ShardSet]:
    """The listed shards as splits left on disk (:class:`ShardSet`), in the manifest's order."""
    splits: dict[str, list[dict[str, Any]]] = {}
    for shard in entries:
        splits.setdefault(shard["split"], []).append(shard)
    return {split: ShardSet.of(folder, shards, classes, size) for split, shards in splits.items()}


@dataclass(frozen=True)
class ShardSet:
    """A split of a sharded upload left on disk, read one checked shard at a time when used:
    what training and evaluation stream from, whatever the upload's size.

    ``counts[i]`` images of ``shards[i]`` belong to the set (all of them, but where
    :meth:`head` cut); image ``offsets[i] + j`` is the ``j``-th of shard ``i``.
    """

    folder: Path
    shards: tuple[dict[str, Any], ...]
    classes: tuple[str, ...]
    image_size: tuple[int, int]
    counts: tuple[int, ...]

    @classmethod
    def of(
        cls, folder: Path, entries: Sequence[dict[str, Any]], classes: Sequence[str],
        image_size: Sequence[int],
    ) -> ShardSet:  # fmt: skip
        """Every image of the listed shards."""
        h, w = image_size
        return cls(folder, tuple(entries), tuple(classes), (h, w),
                   tuple(shard["images"] for shard in entries))  # fmt: skip

    def __len__(self) -> int:
        return sum(self.counts)

    @property
    def offsets(self) -> list[int]:
        """The index of each shard's first image in the set."""
        return np.cumsum((0, *self.counts[:-1])).tolist()

    def head(self, n: int) -> ShardSet:
        """The first ``n`` images."""
        counts = []
        for count in self.counts:
            if n <= 0:
                break
            counts.append(min(count, n))
            n -= count
        return ShardSet(self.folder, self.shards[: len(counts)], self.classes, self.image_size,
                        tuple(counts))  # fmt: skip

    def select(self, index: Sequence[int]) -> ShardSet:
        """The shards at ``index``, in that order."""
        return ShardSet(self.folder, tuple(self.shards[i] for i in index), self.classes,
                        self.image_size, tuple(self.counts[i] for i in index))  # fmt: skip

    def shard_order(self, seed: int) -> list[int]:
        """A seeded random order of the shards."""
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(len(self.shards), generator=generator).tolist()

    def _drawn(self, n: int, seed: int) -> tuple[list[int], int]:
        """A seeded random shard order, and how many of its first shards hold ``n`` images."""
        order = self.shard_order(seed)
        return order, int(np.searchsorted(np.cumsum([self.counts[i] for i in order]), n)) + 1

    def hold_out(self, size: int, seed: int) -> tuple[ShardSet, ShardSet]:
        """(train, validation): whole shards, drawn at random, kept aside until they hold at
        least ``size`` images (a shard is read whole or not at all)."""
        order, taken = self._drawn(size, seed)
        if taken >= len(order):
            raise ConfigError(f"val_size {size} takes every one of the {len(order)} training "
                              "shards; none is left to train on")  # fmt: skip
        return self.select(sorted(order[taken:])), self.select(sorted(order[:taken]))

    def read(self, i: int) -> ImageSet:
        """Shard ``i``'s images of the set, read and checked (:func:`read_shard`)."""
        images, labels, _ = read_shard(self.folder, self.shards[i], len(self.classes),
                                       list(self.image_size))  # fmt: skip
        n = self.counts[i]
        return ImageSet(torch.from_numpy(images[:n]), torch.from_numpy(labels[:n]), self.classes)

    def load(self) -> ImageSet:
        """Every image, in memory (for sets that fit)."""
        parts = [self.read(i) for i in range(len(self.shards))]
        return ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                        self.classes)  # fmt: skip

    def sample(self, n: int, seed: int) -> ImageSet:
        """Whole shards, drawn at random, until they hold at least ``n`` images (or all)."""
        order, taken = self._drawn(n, seed)
        return self.select(sorted(order[:taken])).load()
