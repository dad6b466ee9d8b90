"""The upload manifest: what ``keyless encrypt`` wrote into a folder, never any key material.

``keyless.json`` next to the ciphertexts says which cipher (name and options) and which key mode
made them, the image size, class names and counts, a hash of the payload and, for a master key,
its public check value (HKDF of the secret, never the secret); a sharded upload's manifest also
lists every shard with its hash (:mod:`keyless.upload._shards`). The cloud reads it to know what it
holds; ``decrypt`` reads it to refuse a wrong key mode, cipher or master key; ``encrypt`` into the
same folder again (a resume) must use the same cipher, key mode and master key.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from keyless._atomic import write_bytes_atomic
from keyless._schema import build_dataclass, read_as
from keyless.cipher import Cipher, NamedCipher
from keyless.data import (
    IMAGE_SUFFIXES,
    ImageSet,
    adopt_classes,
    classes_text,
    find_files,
    load_npz,
    load_splits,
    split_classes,
)
from keyless.errors import ConfigError, InputError, KeyMaterialError
from keyless.upload._shards import ShardSet, iter_shards, shard_sets, shards_hash

MANIFEST = "keyless.json"
FORMAT, VERSION = "keyless-upload", 3  # 2: a common key's check value; 3: shards
MAX_MANIFEST_BYTES = 64 * 2**20  # a manifest is read whole; a larger file is not one

# the schema of a manifest's fields (a manifest is read back checked against them: Manifest.read)
UploadKeyMode = Literal["independent", "common", "master-key", "seed"]  # KEY_MODES_OF["encrypt"]
CheckValue = Annotated[str, StringConstraints(pattern="^[0-9a-f]{8}$")]  # keys.check_value
Sha256 = Annotated[str, StringConstraints(pattern="^[0-9a-f]{64}$")]
Side = Annotated[int, Field(gt=0)]


@dataclass
class Manifest:
    """An upload's description (JSON-able; no key material).

    Attributes:
        cipher: the cipher that made the ciphertexts (written as its ``settings()``).
        keys: the key mode (:mod:`keyless.keymodes`): ``independent`` (CSPRNG keys, thrown
            away), ``common`` (one shared key), ``master-key`` (derived from a kept secret) or
            ``seed`` (reproducible experiments).
        master_key_check: the master key's public check value, for ``master-key``.
        image_size: (H, W) when every image has it, else ``None``.
        classes: class names (class sub-folders of image folders, or the npz label range).
        counts: images per split (``.`` for files outside any class folder).
        payload_sha256: hash over every payload file's relative path and contents.
        common_key_check: the common key's public check value, for ``common`` (absent from
            manifests of older keyless, whose common keys go unchecked).
        shard_size: images per shard of a sharded upload; ``None`` for one file per image.
        shards: a sharded upload's shards in order, each ``{"file", "split", "images",
            "sha256"}``; the payload hash is then :func:`shards_hash` of them.
    """

    cipher: NamedCipher
    keys: UploadKeyMode
    master_key_check: CheckValue | None = None
    image_size: Annotated[list[Side], Field(min_length=2, max_length=2)] | None = None
    classes: list[str] = field(default_factory=list)
    counts: dict[str, Annotated[int, Field(ge=0)]] = field(default_factory=dict)
    payload_sha256: Sha256 = ""
    common_key_check: CheckValue | None = None
    shard_size: Side | None = None
    shards: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, the cipher as its ``settings()``: what :meth:`write` writes and a run's
        record keeps."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "cipher": self.cipher.settings()}

    def write(self, folder: Path) -> None:
        """The oldest version that holds what this manifest says (what older keyless reads): 3
        for shards, else 2 for a common key's check value, else 1."""
        version = 3 if self.shard_size else 2 if self.common_key_check else 1
        data = {"format": FORMAT, "version": version, **self.to_dict()}
        for name in ("common_key_check", "shard_size", "shards"):
            if not data[name]:
                del data[name]
        write_bytes_atomic(folder / MANIFEST, (json.dumps(data, indent=2) + "\n").encode())

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The folder's manifest, ``None`` if it has none. Every field is checked against its
        type (this dataclass's hints, strict: :func:`~keyless._schema.build_dataclass`); a
        damaged or tampered manifest is one :class:`InputError` naming the file and the field."""
        path = folder / MANIFEST
        if not path.exists():
            return None
        what = "keyless upload manifest"
        try:
            with path.open("rb") as file:
                text = file.read(MAX_MANIFEST_BYTES + 1)
            if len(text) > MAX_MANIFEST_BYTES:
                raise ValueError(f"over {MAX_MANIFEST_BYTES:,} bytes")
            data = json.loads(text)
        except (OSError, ValueError) as exc:  # ValueError: too large, not UTF-8, not JSON
            raise InputError(f"{path}: not a {what} ({exc})") from None
        header = read_as(_Header.model_validate, data, path, what)
        if header.version > VERSION:
            raise InputError(f"{path}: version {header.version} is newer than this keyless reads")
        fields_only = {k: v for k, v in data.items() if k not in ("format", "version")}
        return read_as(lambda values: build_dataclass(cls, values), fields_only, path, what)


class _Header(BaseModel):
    """What a manifest says of itself."""

    model_config = ConfigDict(strict=True)

    format: Literal["keyless-upload"]
    version: Annotated[int, Field(ge=1)]


def describe(folder: Path, planned: Manifest) -> Manifest:
    """The manifest of the payload now in ``folder``: ``planned``'s cipher, key mode and check
    values with the payload's sizes, classes, counts and hash."""
    files = _payload(folder)
    splits_layout = (folder / "train").is_dir()
    sizes, counts = set(), {}
    npz_classes: list[str] = []  # in label order
    folder_classes: set[str] = set()  # class sub-folders, sorted as the loader sorts them
    for path in files:
        relative = path.relative_to(folder).as_posix()
        if path.suffix.lower() == ".npz":
            for split, data in load_npz(path).items():
                counts[split] = counts.get(split, 0) + len(data)
                sizes.add(tuple(data.images.shape[1:3]))
                npz_classes = max(npz_classes, list(data.classes), key=len)
        else:
            group, label = split_and_class(relative.split("/"), splits_layout)
            counts[group] = counts.get(group, 0) + 1
            folder_classes |= {label} if label else set()
            sizes.add(_image_size(path))
    size = list(sizes.pop()) if len(sizes) == 1 else None
    classes = npz_classes or sorted(folder_classes)
    return replace(planned, image_size=size, classes=classes, counts=counts,
                   payload_sha256=payload_hash(folder))  # fmt: skip


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header; one line naming a file that is not one
    (a file in the upload keyless did not write: a decompression bomb, junk)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.height, image.width
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: not an image keyless can describe ({exc})") from None


def split_and_class(parts: list[str], splits_layout: bool) -> tuple[str, str | None]:
    """Which split and class an image file at ``parts`` (relative to the upload) belongs to,
    as :func:`load_splits` reads the folder: ``<split>/<class>/...`` when it has ``train/``,
    else ``<class>/...`` (all training images); files above any class folder have none."""
    if splits_layout:
        return parts[0] if len(parts) > 1 else ".", parts[1] if len(parts) > 2 else None
    return ("train", parts[0]) if len(parts) > 1 else (".", None)


def _payload(folder: Path) -> list[Path]:
    return find_files(folder, IMAGE_SUFFIXES | {".npz"})[0]


def payload_hash(folder: Path) -> str:
    """SHA-256 over every payload file's relative path and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in _payload(folder):
        digest.update(
            path.relative_to(folder).as_posix().encode("utf-8", "surrogateescape") + b"\0"
        )
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def verify_payload(folder: Path, manifest: Manifest) -> None:
    """Refuse an upload whose files are not the ones its manifest describes (one line). The
    shards of a sharded upload are checked as they are read (:func:`verify_shard_list` here)."""
    if manifest.shard_size:
        verify_shard_list(folder, manifest)
        return
    found = payload_hash(folder)  # the hash only: the images are read once, by the loader
    if found != manifest.payload_sha256:
        raise InputError(
            f"{folder}: the files do not match {MANIFEST} (payload hash {found[:12]}"
            f"..., recorded {manifest.payload_sha256[:12]}...): files were added, changed or lost"
        )


def verify_shard_list(folder: Path, manifest: Manifest) -> None:
    """Refuse a sharded upload whose shard list was edited, whose listed shards are not all
    there, or which holds payload files it does not list (one line naming the file)."""
    check_shard_list(folder, manifest)
    found = {path.relative_to(folder).as_posix() for path in _payload(folder)}
    missing = [shard["file"] for shard in manifest.shards if shard["file"] not in found]
    if missing:
        raise InputError(f"{folder / missing[0]}: missing (the upload's manifest lists this shard)")
    extra = unlisted_shards(folder, manifest)
    if extra:
        raise extra[0]


def check_shard_list(folder: Path, manifest: Manifest) -> None:
    """Refuse a sharded upload whose shard list does not match its payload hash (one line)."""
    if shards_hash(manifest.shards) != manifest.payload_sha256:
        raise InputError(f"{folder / MANIFEST}: its shard list does not match its payload hash "
                         "(the manifest was edited)")  # fmt: skip


def unlisted_shards(folder: Path, manifest: Manifest) -> list[InputError]:
    """One error per payload file in a sharded upload that its manifest does not list, sorted."""
    listed = {shard["file"] for shard in manifest.shards}
    found = sorted(path.relative_to(folder).as_posix() for path in _payload(folder))
    return [InputError(f"{folder / name}: not one of the upload's shards (its manifest does "
                       "not list it)") for name in found if name not in listed]  # fmt: skip


def open_upload(data: Path, required: bool = False) -> Manifest | None:
    """The manifest of ``data`` as the cloud receives it, its payload hash checked; ``None`` for
    plain data (refused when ``required``). A file or folder inside an upload is refused: read
    alone, its ciphertexts would pass for plain images and be encrypted again."""
    data = Path(data)
    parent = upload_root(data.absolute().parent)
    if parent is not None:
        raise InputError(f"{data}: part of the encrypted upload {parent}; pass that folder")
    manifest = Manifest.read(data) if data.is_dir() else None
    if manifest is None:
        if required:
            raise InputError(f"{data}: not an encrypted upload (no {MANIFEST}, which `keyless "
                             f"encrypt` writes next to the ciphertexts)")  # fmt: skip
        return None
    verify_payload(data, manifest)
    return manifest


def check_splits(
    data: Path, manifest: Manifest, splits: dict[str, ImageSet]
) -> dict[str, ImageSet]:
    """``splits`` under the manifest's class names (:func:`adopt_classes`); an upload whose
    images contradict its manifest (counts, classes, size) is refused: the manifest was edited,
    or belongs to other files."""
    found = {name: len(split) for name, split in splits.items()}
    adopted = adopt_classes(splits, manifest.classes)
    sizes = {tuple(split.images.shape[1:3]) for split in splits.values()}
    problems = []
    if found != manifest.counts:
        problems.append(f"counts {found}, recorded {manifest.counts}")
    if adopted is None:
        classes = classes_text(split_classes(splits))
        problems.append(f"classes {classes}, recorded {classes_text(manifest.classes)}")
    if manifest.image_size is not None and sizes != {tuple(manifest.image_size)}:
        problems.append(f"image sizes {sorted(sizes)}, recorded {manifest.image_size}")
    if problems:
        found_text = "; ".join(problems)
        raise InputError(f"{data / MANIFEST}: does not describe these files ({found_text})")
    return adopted


def load_received(
    data: Path, require_upload: bool = False, stream: bool = False
) -> tuple[Manifest | None, dict[str, ImageSet | ShardSet]]:
    """What the cloud was given: (its manifest, or ``None`` for plain data, and its splits),
    the upload checked against its manifest (:func:`open_upload`, :func:`check_splits`). With
    ``stream``, a sharded upload's splits stay on disk (:class:`ShardSet`: each shard is checked
    as it is read); otherwise they are read whole."""
    manifest = open_upload(data, require_upload)
    if manifest is None or not manifest.shard_size:
        splits = load_splits(data)
        return manifest, splits if manifest is None else check_splits(data, manifest, splits)
    sets = shard_sets(Path(data), manifest.shards, manifest.classes, manifest.image_size)
    if stream:
        counts = {name: len(split) for name, split in sets.items()}
        if counts != manifest.counts:
            raise InputError(f"{data / MANIFEST}: does not describe its shards (counts "
                             f"{counts}, recorded {manifest.counts})")  # fmt: skip
        return manifest, dict(sets)
    return manifest, check_splits(data, manifest, {k: v.load() for k, v in sets.items()})


def read_shards(data: Path | str) -> Iterator[tuple[str, np.ndarray, np.ndarray, list[str]]]:
    """A sharded upload as the cloud streams it: ``(split, images, labels, ids)`` per shard,
    in the manifest's order, one shard in memory at a time, each checked against its hash as it
    is read (a damaged, missing or foreign shard: a one-line :class:`InputError` naming it).
    ``images`` are (N, H, W, 3) uint8 ciphertexts, ``labels`` (N,) int64 into the manifest's
    classes."""
    data = Path(data)
    manifest = open_upload(data, required=True)
    if not manifest.shard_size:
        raise InputError(f"{data}: holds one file per image, not shards")
    size = manifest.image_size
    for shard, images, labels, ids in iter_shards(data, manifest.shards, len(manifest.classes),
                                                  size):  # fmt: skip
        yield shard["split"], images, labels, ids


def upload_root(path: Path | str) -> Path | None:
    """The upload holding ``path``: the folder itself or its nearest ancestor with a manifest
    (absolute); ``None`` outside any upload."""
    path = Path(os.path.abspath(path))  # ".." collapsed, links kept (as the ids see them)
    folders = ([path] if path.is_dir() else []) + list(path.parents)
    return next((folder for folder in folders if (folder / MANIFEST).is_file()), None)


def cipher_text(cipher: Cipher) -> str:
    """A cipher as an error message names it: ``le (block_size=4, ...)``."""
    settings = cipher.settings()
    options = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "name")
    return f"{settings['name']} ({options})" if options else settings["name"]


def check_same_encryption(existing: Manifest, planned: Manifest, where: str) -> None:
    """Refuse (one line, starting with ``where``) keys, a cipher (a usage error: the options
    contradict the upload) or a master key other than the ones ``existing`` was encrypted with."""
    if existing.keys != planned.keys:
        raise ConfigError(f"{where} encrypted with {existing.keys} keys, not {planned.keys} ones")
    if existing.cipher.settings() != planned.cipher.settings():
        raise ConfigError(
            f"{where} encrypted with cipher {cipher_text(existing.cipher)}, not "
            f"{cipher_text(planned.cipher)}"
        )
    for kind, had, has in (
        ("master", existing.master_key_check, planned.master_key_check),
        ("common", existing.common_key_check, planned.common_key_check),
    ):
        if had != has and (kind == "master" or had is not None):  # older manifests: no check
            this = f"this key's is {has}" if has else "this key file is new"
            raise KeyMaterialError(
                f"{where} encrypted with another {kind} key (check value {had}, {this})"
            )


def check_resume(folder: Path, planned: Manifest) -> None:
    """Refuse to add ciphertexts made another way, or laid out another way (one file per image,
    shards of another size), to an upload folder (one-line error)."""
    existing = Manifest.read(folder)
    if existing is None:
        return
    check_same_encryption(existing, planned, f"{folder}: holds images")
    if existing.shard_size != planned.shard_size:
        raise ConfigError(f"{folder}: holds {_layout(existing.shard_size)}, not "
                          f"{_layout(planned.shard_size)}; write into a new --out")  # fmt: skip


def _layout(shard_size: int | None) -> str:
    return f"shards of {shard_size} images" if shard_size else "one file per image"


def check_decryption(path: Path, planned: Manifest) -> None:
    """Refuse to decrypt ``path`` (a file or folder of an upload) with other keys, another
    cipher or another master key than its upload's manifest names: each would turn every image
    to noise without a word. Files outside any upload are not checked."""
    root = upload_root(path)
    existing = Manifest.read(root) if root is not None else None
    if existing is None:
        return
    if existing.keys == "independent":
        raise KeyMaterialError(
            f"{path}: encrypted with independent keys, thrown away when it was made; "
            "nobody can decrypt it"
        )
    check_same_encryption(existing, planned, f"{path}:")
