"""Many files in, one folder out: the owner's batch calls behind ``keyless encrypt``, ``decrypt``
and ``fold``, with their folder rules. Each returns what it did (:class:`BatchSummary`); the
command line prints it and exits with its status.

Folder rules: the output folder is never inside an input folder (nor, when decrypting, inside
the encrypted upload), and no input is inside the output folder, so that outputs never join the
inputs and plain images never join an upload. Plain outputs (decryptions) are the owner's only:
files 0o600 and every folder made for them 0o700; a folder that was already there keeps its
mode (a shared folder such as ``/tmp`` is never changed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch

from keyless._atomic import make_folders, remove_leftovers
from keyless.cipher import Cipher
from keyless.data import DEFAULT_MAX_PIXELS
from keyless.errors import ConfigError, ExitStatus, KeylessError, KeyMaterialError, OutputError
from keyless.invariant import fold
from keyless.keymodes import KeyMode
from keyless.keys import MasterKeySource
from keyless.upload._jobs import (
    ImageFn,
    KeyPlan,
    check_written,
    first_size,
    output_path,
    plan_jobs,
    run_jobs,
    transform_file,
)
from keyless.upload._manifest import (
    MANIFEST,
    Manifest,
    check_decryption,
    check_resume,
    describe,
    upload_root,
)
from keyless.upload._pool import run_tasks
from keyless.upload._sharded import ShardWriter, plan_shards, write_shards
from keyless.upload._shards import shards_hash
from keyless.upload._unshard import ShardDecrypter, select_shards, sharded_upload


@dataclass
class BatchSummary:
    """What a batch call did: outputs ``written`` into ``out``, outputs already there
    (``skipped``), and one error per input that failed (the others went on)."""

    out: Path
    written: int = 0
    skipped: int = 0
    errors: list[KeylessError] = field(default_factory=list)

    @property
    def exit_status(self) -> ExitStatus:
        """``OK`` when no input failed, else the highest exit status among the errors."""
        return max((ExitStatus(e.exit_code) for e in self.errors), default=ExitStatus.OK)


def run_batch(
    inputs: Iterable[Path | str],
    out: Path | str,
    fn: ImageFn,
    desc: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decrypting: bool = False,
    size: tuple[int, int] | None = None,
    check: ImageFn | None = None,
    workers: int = 1,
    compress_level: int = 6,
) -> BatchSummary:
    """Write ``fn(images, ids)`` of every image file or npz under ``inputs`` into ``out``
    (outputs already there are skipped; ``desc`` labels the progress bar), over ``workers``
    processes (``fn`` must then pickle), PNG outputs at zlib ``compress_level``.

    ``decrypting`` names images as :func:`encrypt_files` did (relative to their upload) and
    writes plain outputs, the owner's only (see the module). ``size`` (H, W) scales and
    centre-crops image files first. ``check``, the same transform as ``fn`` without side effects
    (no new key file), refuses a resume that would not write what the first call wrote
    (:func:`~keyless.upload.check_written`). Temporary files that a killed call left for these
    outputs are removed. Refusals of the whole call raise (a folder rule: :class:`ConfigError`);
    a failing input is one error in the summary.
    """
    inputs, out = list(inputs), Path(out)  # as given: "file.png/" is refused by plan_jobs
    _check_folders([Path(raw) for raw in inputs], out, decrypting)
    jobs, errors = plan_jobs(inputs, upload_ids=decrypting)
    remove_leftovers(out, [output_path(job, out) for job in jobs] + [out / MANIFEST])
    if check is not None:
        check_written(jobs, out, check, max_pixels, size)
    mode = None
    if decrypting:
        make_folders(out, 0o700)
        mode = 0o600
    write = partial(transform_file, fn=fn, max_pixels=max_pixels, mode=mode, size=size,
                    compress_level=compress_level)  # fmt: skip
    written, skipped, failed = run_jobs(jobs, out, write, desc, workers)
    return BatchSummary(out, written, skipped, errors + failed)


def _check_folders(inputs: list[Path], out: Path, decrypting: bool) -> None:
    """The folder rules (see the module), each a one-line :class:`ConfigError`. Paths are
    compared with links resolved (a loop of links stays as it is: its input fails alone)."""
    real_out = _real(out)
    for path in inputs:
        folders = [(_real(path), f"the input folder {path}")]
        upload = upload_root(path) if decrypting else None
        if upload is not None:  # plain images must never join the upload
            folders.append((_real(upload), f"the encrypted upload {upload}"))
        for folder, name in folders:
            if folder.is_dir() and folder in (real_out, *real_out.parents):
                raise ConfigError(f"--out {out} is inside {name}; write the outputs elsewhere")
        if real_out in _real(path).parents:  # it would join the outputs' folder
            raise ConfigError(f"the input {path} is inside {out}; write the outputs elsewhere")


def _real(path: Path) -> Path:
    """``path`` absolute, links resolved (``Path.resolve`` raises on a loop of links)."""
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class _Encrypt:
    """``fn(images, ids)`` of ``keyless encrypt``: the owner's noise (``obscure``), then the
    cipher under the plan's keys; a picklable task for worker processes."""

    cipher: Cipher
    plan: KeyPlan
    obscure: bool = True

    def __call__(self, images: torch.Tensor, ids: list[str]) -> torch.Tensor:
        plain = self.cipher.obscure(images) if self.obscure else images
        return self.cipher.encrypt(plain, self.plan.keys(images, ids))


CIPHERTEXT_PNG_LEVEL = 1  # zlib's fastest: ciphertexts are near noise (see docs/deployment.md)


def encrypt_files(
    inputs: Iterable[Path | str],
    out: Path | str,
    cipher: Cipher,
    keys: KeyMode = "independent",
    seed: int | None = None,
    key_file: Path | str | None = None,
    size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shard_size: int | None = None,
    workers: int = 1,
) -> BatchSummary:
    """Encrypt image files, folders or npz datasets into ``out`` (PNG or npz, lossless), then
    describe what ``out`` holds in its manifest (``keyless.json``: cipher, key mode, sizes,
    classes, counts, payload hash; never a key).

    ``keys`` is the key mode (:meth:`KeyPlan.for_mode`): ``independent`` (a CSPRNG key per
    image, thrown away: nobody can decrypt), ``seed`` (with ``seed``), ``master-key`` (with
    ``key_file``, a master secret) or ``common`` (with ``key_file``, created if missing).
    ``size`` (H, W) scales and centre-crops every image file before it is encrypted. With
    ``shard_size``, image files go into shards of that many images each (one size for all:
    ``size``, or the first image's), their hashes in the manifest (:mod:`keyless.upload._shards`)
    rather than one file per image. ``workers`` processes encrypt at once; keys that follow
    image ids (``seed``, ``master-key``) make the same outputs whatever their number. Encrypting
    into ``out`` again resumes: the cipher, key mode, key and layout must be the first call's.
    """
    out = Path(out)
    plan = KeyPlan.for_mode(cipher, keys, seed, key_file)
    check_resume(out, replace(plan.planned(), shard_size=shard_size))
    replay = replace(plan, create=False)  # the resume check makes no key file
    # fresh keys, or fresh noise, cannot be replayed to check a resume
    replayable = plan.mode != "independent" and not cipher.settings().get("noise")
    check = _Encrypt(cipher, replay, obscure=False) if replayable else None
    if shard_size:
        return _encrypt_shards(inputs, out, plan, check, size, max_pixels, shard_size, workers)
    if workers > 1 and plan.mode == "common":  # one common key for every worker
        jobs, _ = plan_jobs(inputs)
        image_size = first_size(jobs, max_pixels, size)
        if image_size is not None:
            plan.prepare(image_size)
    summary = run_batch(inputs, out, _Encrypt(cipher, plan), "encrypt", max_pixels, size=size,
                        check=check, workers=workers,
                        compress_level=CIPHERTEXT_PNG_LEVEL)  # fmt: skip
    _describe_into(summary, out, plan)
    return summary


def _describe_into(summary: BatchSummary, out: Path, plan: KeyPlan) -> None:
    """Write ``out``'s manifest (a new common key file exists now); a call that wrote nothing
    writes none. A file that cannot be described, or a manifest that cannot be written (a full
    disk), is one more error in ``summary``, which still tells what was written."""
    try:
        manifest = describe(out, plan.planned())
        if manifest.counts:
            manifest.write(out)
    except KeylessError as exc:
        summary.errors.append(exc)
    except OSError as exc:
        where = exc.filename or out / MANIFEST
        summary.errors.append(OutputError(f"{where}: cannot write ({exc.strerror or exc})"))


def _encrypt_shards(
    inputs: list[Path],
    out: Path,
    plan: KeyPlan,
    check: ImageFn | None,
    size: tuple[int, int] | None,
    max_pixels: int,
    shard_size: int,
    workers: int,
) -> BatchSummary:
    """:func:`encrypt_files` into shards: plan them, write the missing ones, describe them."""
    _check_folders(inputs, out, decrypting=False)
    jobs, errors = plan_jobs(inputs)
    plans, classes, unsharded = plan_shards(jobs, shard_size)
    errors += unsharded
    placed = [job for shard in plans for job in shard.jobs]
    image_size = first_size(placed, max_pixels, size)
    if image_size is not None:
        plan.prepare(image_size)
    else:  # nothing reads: each image's error comes from its shard
        image_size = (0, 0)
    remove_leftovers(out, [out / shard.file for shard in plans] + [out / MANIFEST])
    writer = ShardWriter(out, _Encrypt(plan.cipher, plan), image_size, size is not None,
                         max_pixels)  # fmt: skip
    done = write_shards(plans, writer, check, workers)
    if done.shards:  # a call that wrote nothing writes no manifest
        counts: dict[str, int] = {}
        for shard in done.shards:
            counts[shard["split"]] = counts.get(shard["split"], 0) + shard["images"]
        manifest = replace(plan.planned(), image_size=list(image_size), classes=classes,
                           counts=counts, payload_sha256=shards_hash(done.shards),
                           shard_size=shard_size, shards=done.shards)  # fmt: skip
        manifest.write(out)
    return BatchSummary(out, done.written, done.skipped, errors + done.errors)


@dataclass(frozen=True)
class _Decrypt:
    """``fn(images, ids)`` of ``keyless decrypt``: the cipher undone under the plan's keys; a
    picklable task for worker processes."""

    cipher: Cipher
    plan: KeyPlan

    def __call__(self, images: torch.Tensor, ids: list[str]) -> torch.Tensor:
        return self.cipher.decrypt(images, self.plan.keys(images, ids))


def decrypt_files(
    inputs: Iterable[Path | str],
    out: Path | str,
    cipher: Cipher,
    keys: KeyMode,
    seed: int | None = None,
    key_file: Path | str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 1,
) -> BatchSummary:
    """Decrypt files, folders or npz datasets encrypted by :func:`encrypt_files` with ``keys``
    ``seed``, ``master-key`` or ``common`` (and its ``seed`` or ``key_file``) into ``out``, the
    owner's only (see the module), over ``workers`` processes.

    Each image's key follows its name as :func:`encrypt_files` gave it, relative to its upload,
    so pass the upload, a sub-folder or files of it, unrenamed. A sharded upload (or shards of
    it, passed alone) comes back as one PNG per image at ``out/<image id>.png``, the photo
    folder's layout, each shard checked against its SHA-256 as it is read. The upload's manifest
    refuses a wrong key mode, cipher, master key or common key (a wrong seed cannot be told: its
    outputs are noise); files moved out of their upload are named relative to the folder given
    (or by file name) and not checked. Decrypting into ``out`` again must decrypt as the first
    did.
    """
    plan = KeyPlan.for_mode(cipher, keys, seed, key_file, decrypting=True)
    planned = plan.planned()
    inputs = list(inputs)
    for raw in inputs:
        check_decryption(Path(raw), planned)
    decrypt = _Decrypt(cipher, plan)
    upload = sharded_upload([Path(raw) for raw in inputs])
    if upload is not None:
        return _decrypt_shards(inputs, Path(out), *upload, decrypt, max_pixels, workers)
    return run_batch(inputs, out, decrypt, "decrypt", max_pixels, decrypting=True, check=decrypt,
                     workers=workers)  # fmt: skip


def _decrypt_shards(
    inputs: list[Path | str],
    out: Path,
    root: Path,
    manifest: Manifest,
    decrypt: _Decrypt,
    max_pixels: int,
    workers: int,
) -> BatchSummary:
    """:func:`decrypt_files` of the sharded upload ``root``: one task per shard
    (:class:`~keyless.upload._unshard.ShardDecrypter`)."""
    _check_folders([Path(raw) for raw in inputs], out, decrypting=True)
    shards, errors = select_shards(inputs, root, manifest)
    decrypter = ShardDecrypter(root, out, decrypt, len(manifest.classes), manifest.image_size)
    decrypter.check_written(shards, max_pixels)
    make_folders(out, 0o700)
    done = run_tasks(shards, decrypter, workers, "decrypt", weight=lambda shard: shard["images"])
    for _, _, failed in done:
        errors += failed
    return BatchSummary(out, sum(d[0] for d in done), sum(d[1] for d in done), errors)


def fold_files(
    inputs: Iterable[Path | str], out: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS
) -> BatchSummary:
    """Write the FR fold min(p, 255 - p) of each image, doubled for display (0..254): what any
    PE key leaves visible."""
    return run_batch(inputs, out, lambda x, ids: fold(x) * 2, "fold", max_pixels)


def create_key_file(
    path: Path | str, kind: str, cipher: Cipher, size: tuple[int, int] = (32, 32)
) -> None:
    """Write a new key file, owner-only: a ``master`` secret (per-image keys derived by HKDF) or
    one ``common`` key of ``cipher`` for images of ``size``; an existing file is never replaced."""
    path = Path(path)
    if path.exists():
        raise KeyMaterialError(f"{path}: already exists; refusing to overwrite a key")
    if kind == "master":
        MasterKeySource.create(path)
    elif kind == "common":
        cipher.keygen(1, size).save(path)
    else:
        raise ConfigError(f"key kind must be master or common, got {kind!r}")
