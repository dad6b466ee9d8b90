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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keyless.data import ImageSet
from keyless.errors import InputError

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


def load_shards(
    folder: Path, entries: list[dict[str, Any]], classes: list[str], size: list[int] | None
) -> dict[str, ImageSet]:
    """Every listed shard, checked, as in-memory splits (for data that fits)."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for shard, images, labels, _ in iter_shards(folder, entries, len(classes), size):
        parts.setdefault(shard["split"], []).append((images, labels))
    return {
        split: ImageSet(
            torch.from_numpy(np.concatenate([images for images, _ in chunks])),
            torch.from_numpy(np.concatenate([labels for _, labels in chunks])),
            tuple(classes),
        )
        for split, chunks in parts.items()
    }
