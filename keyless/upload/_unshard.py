"""Decrypting a sharded upload (the format: :mod:`keyless.upload._shards`) back into one PNG per
image at ``<out>/<image id>.png``, the layout of the photo folder it was encrypted from.

Each shard is one task for a worker process: read and checked against its SHA-256, every image
not yet written decrypted under the key its id gets, each written atomically for the owner only.
A damaged, missing or foreign shard is one error naming it; the other shards are still decrypted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keyless._atomic import remove_leftovers
from keyless.data import read_image, write_png
from keyless.errors import ConfigError, InputError, KeylessError, KeyMaterialError
from keyless.upload._jobs import ImageFn, named, write_error
from keyless.upload._manifest import Manifest, check_shard_list, unlisted_shards, upload_root
from keyless.upload._shards import read_shard


def sharded_upload(inputs: list[Path]) -> tuple[Path, Manifest] | None:
    """The sharded upload holding every input, with its manifest; ``None`` when no input is
    inside one. A sharded upload is decrypted alone: other inputs beside it are a usage error."""
    roots = [upload_root(path) for path in inputs]
    manifests = {root: Manifest.read(root) for root in set(roots) if root is not None}
    sharded = [root for root in roots if root is not None and manifests[root].shard_size]
    if not sharded:
        return None
    for path, root in zip(inputs, roots, strict=True):
        if root != sharded[0]:
            raise ConfigError(f"{path}: not in the sharded upload {sharded[0]}; decrypt a "
                              "sharded upload alone (the upload, or shards of it)")  # fmt: skip
    return sharded[0], manifests[sharded[0]]


def select_shards(
    inputs: list[Path | str], root: Path, manifest: Manifest
) -> tuple[list[dict[str, Any]], list[KeylessError]]:
    """The manifest's entries of the shards ``inputs`` name (the upload itself: every shard),
    in its order, and one error per input that is not a listed shard and, for the upload, per
    payload file its manifest does not list (a foreign shard). A shard list edited since the
    upload was made refuses the whole call (:func:`check_shard_list`)."""
    check_shard_list(root, manifest)
    listed = {shard["file"]: shard for shard in manifest.shards}
    chosen, errors = set(), []
    for raw in inputs:
        path = Path(os.path.abspath(raw))
        if path == root:
            chosen |= listed.keys()
            errors += unlisted_shards(root, manifest)
        elif path.parent == root and path.name in listed:
            chosen.add(path.name)
        else:
            errors.append(InputError(f"{raw}: not one of the shards of the upload {root} (its "
                                     "manifest does not list it); pass the upload or its shard "
                                     "files"))  # fmt: skip
    return [shard for shard in manifest.shards if shard["file"] in chosen], errors


@dataclass(frozen=True)
class ShardDecrypter:
    """Decrypts one listed shard of the upload ``root`` into ``out`` (a picklable task for
    :func:`~keyless.upload._pool.run_tasks`): ``decrypt(images, ids)`` of every image whose PNG
    is not there yet, written atomically, file 0o600 and every folder made for it 0o700. The
    shard is checked against the manifest's number of ``classes`` and image ``size`` (H, W)."""

    root: Path
    out: Path
    decrypt: ImageFn
    classes: int
    size: list[int] | None

    def read(self, shard: dict[str, Any]) -> tuple[np.ndarray, list[str], list[Path]]:
        """A shard's (N, H, W, 3) uint8 ciphertexts, their ids and their outputs' paths,
        checked (:func:`read_shard`); an id that is no relative path is refused."""
        images, _, ids = read_shard(self.root, shard, self.classes, self.size)
        for image_id in ids:
            parts = image_id.split("/")
            if "\0" in image_id or any(part in ("", ".", "..") for part in parts):
                raise InputError(f"{self.root / shard['file']}: holds the image id "
                                 f"{image_id!r}, not a path inside a folder")  # fmt: skip
        return images, ids, [self.out / f"{image_id}.png" for image_id in ids]

    def __call__(self, shard: dict[str, Any]) -> tuple[int, int, list[KeylessError]]:
        """(images written, images already there, errors): one error for a shard that cannot
        be read or decrypted, one per image that cannot be written."""
        path = self.root / shard["file"]
        try:
            images, ids, targets = self.read(shard)
            remove_leftovers(self.out, targets)  # temporary files of a killed call
            todo = [i for i, target in enumerate(targets) if not target.exists()]
            if not todo:
                return 0, len(ids), []
            plain = self.decrypt(torch.from_numpy(images[todo]), [ids[i] for i in todo]).numpy()
        except KeylessError as exc:
            return 0, 0, [named(exc, path)]
        written, errors = 0, []
        for i, image in zip(todo, plain, strict=True):
            try:
                write_png(targets[i], image, 0o600)
                written += 1
            except OSError as exc:
                errors.append(write_error(exc, targets[i]))
        return written, len(ids) - len(todo), errors

    def check_written(self, shards: list[dict[str, Any]], max_pixels: int) -> None:
        """Refuse to resume into ``out`` if the first output already there (in shard order) is
        not what this call writes: another seed or key would keep the first call's noise, or
        mix two decryptions in one folder. Shards that cannot be read are passed over (each is
        its own error when it is decrypted)."""
        if next(self.out.rglob("*.png"), None) is None:
            return  # nothing written yet: no shard need be read twice
        for shard in shards:
            try:
                images, ids, targets = self.read(shard)
            except KeylessError:
                continue
            i = next((i for i, target in enumerate(targets) if target.exists()), None)
            if i is None:
                continue
            made = self.decrypt(torch.from_numpy(images[i : i + 1]), ids[i : i + 1])[0].numpy()
            if not np.array_equal(read_image(targets[i], max_pixels), made):
                raise KeyMaterialError(
                    f"{targets[i]}: already written from {self.root / shard['file']}, but not "
                    "as this call writes it (another seed or key?); write into a new --out"
                )
            return
