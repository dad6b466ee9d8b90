"""Encrypting image files into shards (the format: :mod:`keyless.upload._shards`): the images
cut into fixed-size shards per split, in an order fixed by their ids that mixes the classes,
each shard written atomically by a worker process, and a re-run that writes only the shards
still missing.

A shard is all or nothing: an image that cannot be read (or has another size) is reported and
its shard is not written, so that a re-run after the file is fixed writes exactly that shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keyless._atomic import write_bytes_atomic
from keyless.data import fit_image, read_image
from keyless.errors import InputError, KeylessError, KeyMaterialError, OutputError
from keyless.upload._jobs import ImageFn, Job, named
from keyless.upload._manifest import split_and_class
from keyless.upload._pool import run_tasks
from keyless.upload._shards import entry, parse_shard, shard_bytes, shard_name


@dataclass(frozen=True)
class ShardPlan:
    """One shard to write: its file name, split, images (jobs, in order) and their labels."""

    file: str
    split: str
    jobs: tuple[Job, ...]
    labels: tuple[int, ...]

    @property
    def ids(self) -> list[str]:
        return [job.image_id for job in self.jobs]


def plan_shards(
    jobs: list[Job], shard_size: int
) -> tuple[list[ShardPlan], list[str], list[KeylessError]]:
    """Cut ``jobs`` into shards of ``shard_size`` images per split, the classes mixed
    (:func:`_mixed`): (the shards, the class names, one error per input that cannot go into a
    shard). Splits and classes are read from the image ids as :func:`~keyless.data.load_splits`
    reads a folder."""
    parts = [job.image_id.split("/") for job in jobs]
    splits_layout = any(p[0] == "train" and len(p) > 1 for p in parts)
    placed, errors = [], []
    for job, path in zip(jobs, parts, strict=True):
        split, label = split_and_class(path, splits_layout)
        if job.source.suffix.lower() == ".npz":
            errors.append(InputError(f"{job.source}: an npz dataset is one file already; "
                                     "encrypt it without --shard-size"))  # fmt: skip
        elif label is None:
            errors.append(InputError(f"{job.source}: outside any class folder; a shard keeps "
                                     "each image's class, its folder"))  # fmt: skip
        else:
            placed.append((split, label, job))
    classes = sorted({label for _, label, _ in placed})
    number = {name: index for index, name in enumerate(classes)}
    members: dict[str, list[tuple[Job, int]]] = {}
    for split, label, job in sorted(placed, key=lambda placed: _mixed(placed[2].image_id)):
        members.setdefault(split, []).append((job, number[label]))
    plans = []
    for split in sorted(members):
        for start in range(0, len(members[split]), shard_size):
            jobs_in, labels = zip(*members[split][start : start + shard_size], strict=True)
            plans.append(ShardPlan(shard_name(split, start // shard_size), split, jobs_in, labels))
    return plans, classes, errors


def _mixed(image_id: str) -> bytes:
    """Where an image goes in its split's shards: a hash of its id, so that shards mix the
    classes (folders list one class after another; a shard of one class would make batches of
    one class while training streams) and the same inputs are cut the same way on every run."""
    return hashlib.sha256(image_id.encode()).digest()


@dataclass(frozen=True)
class ShardWriter:
    """Writes one planned shard (a picklable task for :func:`run_tasks`): every image read,
    scaled and cropped to ``size`` when ``fit`` (else refused unless it has that size),
    ``encrypt(images, ids)``, the shard written atomically into ``out``."""

    out: Path
    encrypt: ImageFn
    size: tuple[int, int]
    fit: bool
    max_pixels: int

    def read(self, job: Job) -> np.ndarray:
        image = read_image(job.source, self.max_pixels)
        if self.fit:
            return fit_image(image, self.size)
        if image.shape[:2] != self.size:
            (h, w), (uh, uw) = image.shape[:2], self.size
            raise InputError(f"{job.source}: {w}x{h}, but the upload's images are {uw}x{uh} "
                             "(the first image's size); pass --size to fit them all")  # fmt: skip
        return image

    def __call__(self, plan: ShardPlan) -> tuple[dict[str, Any] | None, list[KeylessError]]:
        """(the shard's manifest entry, or ``None`` when it was not written; its errors)."""
        images, errors = [], []
        for job in plan.jobs:
            try:
                images.append(self.read(job))
            except KeylessError as exc:
                errors.append(named(exc, job.source))
        if errors:
            return None, errors
        ciphertexts = self.encrypt(torch.from_numpy(np.stack(images)), plan.ids).numpy()
        data = shard_bytes(ciphertexts, np.array(plan.labels), plan.ids)
        target = self.out / plan.file
        try:
            write_bytes_atomic(target, data)
        except OSError as exc:
            return None, [OutputError(f"{target}: cannot write ({exc.strerror or exc})")]
        return entry(plan.file, plan.split, data, len(images)), []


@dataclass
class Sharded:
    """What :func:`write_shards` did: the manifest entries of every shard now in the folder (in
    order), the images written now and those already there, and the errors."""

    shards: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0
    skipped: int = 0
    errors: list[KeylessError] = field(default_factory=list)


def write_shards(
    plans: list[ShardPlan],
    writer: ShardWriter,
    check: ImageFn | None,
    workers: int,
) -> Sharded:
    """Write every planned shard missing from ``writer.out`` over ``workers`` processes.

    Shards already there are read back and must hold the planned images (ids, labels, size),
    and no other shard may be there, else the call is refused: the inputs changed since, and the
    shards would no longer be cut where they were. ``check`` (see
    :func:`~keyless.upload.check_written`) re-encrypts the first image of the first shard there
    and refuses another seed or key.
    """
    planned = {plan.file for plan in plans}
    stray = sorted(p for p in writer.out.glob("*.npz") if p.name not in planned)
    if stray:
        raise InputError(f"{stray[0]}: a shard this call does not write (inputs removed since "
                         "it was written?); write into a new --out")  # fmt: skip
    done: dict[str, dict[str, Any]] = {}
    for plan in plans:
        path = writer.out / plan.file
        if path.is_file():
            done[plan.file] = _written_shard(path, plan, writer, check if not done else None)
    todo = [plan for plan in plans if plan.file not in done]
    results = run_tasks(todo, writer, workers, "encrypt", weight=lambda plan: len(plan.jobs))
    summary = Sharded(skipped=sum(shard["images"] for shard in done.values()))
    for plan, (shard, errors) in zip(todo, results, strict=True):
        summary.errors += errors
        if shard is not None:
            done[plan.file] = shard
            summary.written += shard["images"]
    summary.shards = [done[plan.file] for plan in plans if plan.file in done]
    return summary


def _written_shard(
    path: Path, plan: ShardPlan, writer: ShardWriter, check: ImageFn | None
) -> dict[str, Any]:
    """The manifest entry of a shard already written, refused unless it holds what ``plan``
    puts there (and, with ``check``, as this call encrypts it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read this shard ({exc.strerror or exc})") from None
    images, labels, ids = parse_shard(data, str(path))
    if (
        ids != plan.ids
        or labels.tolist() != list(plan.labels)
        or (images.shape[1:3] != writer.size)
    ):
        raise InputError(
            f"{path}: holds other images than this call puts there (inputs added, removed or "
            "renamed since it was written, or another --size); write into a new --out"
        )
    if check is not None:
        first = torch.from_numpy(writer.read(plan.jobs[0])[None])
        if not np.array_equal(check(first, ids[:1])[0].numpy(), images[0]):
            raise KeyMaterialError(
                f"{path}: already written from {plan.jobs[0].source}, but not as this call "
                "writes it (another seed, key or size?); write into a new --out"
            )
    return entry(plan.file, plan.split, data, len(images))
