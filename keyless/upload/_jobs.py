"""Many input files in, one output per input: ids, output paths, skipping and error collection;
and the key plan that gives each image its key under a key mode."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from keyless.cipher import Cipher, Key
from keyless.data import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageSet,
    find_files,
    fit_image,
    load_npz,
    read_image,
    save_npz,
    write_png,
)
from keyless.errors import ConfigError, InputError, KeylessError, KeyMaterialError, OutputError
from keyless.keymodes import KeyMode, key_mode
from keyless.keys import CsprngSource, KeySource, MasterKeySource, SeedSource, check_value
from keyless.upload._manifest import Manifest, upload_root
from keyless.upload._pool import run_tasks

_FILES_PER_TASK = 16  # files a worker process takes at a time


@dataclass(frozen=True)
class Job:
    """One input: its path and its id (path relative to the input root, without suffix)."""

    source: Path
    image_id: str

    def output(self, out_dir: Path, suffix: str = ".png") -> Path:
        return out_dir / f"{self.image_id}{suffix}"


def plan_jobs(
    inputs: Iterable[Path | str], upload_ids: bool = False
) -> tuple[list[Job], list[KeylessError]]:
    """Expand files and folders into jobs; unreadable inputs and clashing ids become errors.

    Ids are paths relative to each folder given (a file's is its name); with ``upload_ids``,
    relative to the encrypted upload holding the input, as ``keyless encrypt`` named them, so
    that a file or sub-folder of an upload decrypts under its own keys.
    """
    jobs: dict[str, Job] = {}
    errors: list[KeylessError] = []
    for raw in inputs:
        path = Path(raw)
        try:
            is_folder = stat.S_ISDIR(os.stat(raw).st_mode)  # as given: "file.png/" is no folder
        except OSError as exc:  # missing, a loop of links, "file.png/", not allowed
            errors.append(InputError(_unreadable(raw, exc)))
            continue
        root = upload_root(path) if upload_ids else None
        if is_folder:
            found, unlisted = find_files(path, IMAGE_SUFFIXES | {".npz"})
            errors += unlisted
            if not found and not unlisted:
                errors.append(InputError(f"{path}: folder holds no image files"))
            candidates = [Job(p, _image_id(p, root or path)) for p in found]
        else:
            candidates = [Job(path, _image_id(path, root) if root else path.stem)]
        for job in candidates:
            if job.image_id in jobs:
                errors.append(
                    InputError(f"{job.source}: same output name as {jobs[job.image_id].source}")
                )
            else:
                jobs[job.image_id] = job
    return list(jobs.values()), errors


def _unreadable(raw: Path | str, exc: OSError) -> str:
    """Why input ``raw`` cannot be read, on one line naming it as given."""
    if exc.errno == errno.ENOENT:
        return f"{raw}: no such file or folder"
    if exc.errno == errno.ENOTDIR:
        return f"{raw}: not a folder (a name ending in / is one), nor below one"
    return f"{raw}: cannot read ({exc.strerror})"


def _image_id(path: Path, root: Path) -> str:
    relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    return relative.with_suffix("").as_posix()


def run_jobs(
    jobs: list[Job],
    out_dir: Path,
    process: Callable[[Job, Path], None],
    desc: str,
    workers: int = 1,
) -> tuple[int, int, list[KeylessError]]:
    """Run ``process(job, output_path)`` for each job whose output does not exist yet, over
    ``workers`` processes (``process`` must then pickle: see :func:`run_tasks`).

    Outputs are ``.npz`` for ``.npz`` inputs and ``.png`` otherwise. Returns the number written,
    the number skipped and the errors, in the jobs' order; one failing input never stops the
    others.
    """
    chunks = [jobs[i : i + _FILES_PER_TASK] for i in range(0, len(jobs), _FILES_PER_TASK)]
    done = run_tasks(chunks, partial(_run_chunk, out_dir=out_dir, process=process), workers,
                     desc, weight=len)  # fmt: skip
    errors = [error for _, _, chunk_errors in done for error in chunk_errors]
    return sum(d[0] for d in done), sum(d[1] for d in done), errors


def _run_chunk(
    jobs: list[Job], out_dir: Path, process: Callable[[Job, Path], None]
) -> tuple[int, int, list[KeylessError]]:
    written, skipped, errors = 0, 0, []
    for job in jobs:
        target = output_path(job, out_dir)
        if target.exists():
            skipped += 1
            continue
        try:
            process(job, target)
            written += 1
        except KeylessError as exc:
            errors.append(named(exc, job.source))
        except OSError as exc:
            errors.append(write_error(exc, target))
    return written, skipped, errors


def write_error(exc: OSError, target: Path) -> OutputError:
    """The one-line error of writing ``target``: its own file or folder, named as ``target``,
    or another file (a new key file), named as itself."""
    other = exc.filename is not None and Path(exc.filename) not in (target, *target.parents)
    where = exc.filename if other else target
    return OutputError(f"{where}: cannot write ({exc.strerror or exc})")


def named(error: KeylessError, source: Path) -> KeylessError:
    """``error``, its message starting with the file it came from unless it names it already."""
    return error if str(source) in str(error) else type(error)(f"{source}: {error}")


def output_path(job: Job, out_dir: Path) -> Path:
    """Where a job's output goes: ``.npz`` for an ``.npz`` input, ``.png`` otherwise."""
    return job.output(out_dir, ".npz" if job.source.suffix.lower() == ".npz" else ".png")


ImageFn = Callable[[torch.Tensor, list[str]], torch.Tensor]


def transform_file(
    job: Job,
    target: Path,
    fn: ImageFn,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mode: int | None = None,
    size: tuple[int, int] | None = None,
    compress_level: int = 6,
) -> None:
    """Apply ``fn(images, ids)`` to an image file (one image) or an npz (every split).

    Image ids are ``<job id>`` for a file and ``<job id>/<split>/<index>`` inside an npz. The
    output is written atomically in the input's format (PNG at zlib ``compress_level``, or npz),
    with permissions ``mode`` (default: a new file's usual ones; 0o600 for outputs that hold
    plain images). With ``size`` (H, W), each image file is first scaled and centre-cropped to
    it (:func:`fit_image`).
    """
    made = _transformed(job, fn, max_pixels, size)
    if isinstance(made, dict):
        save_npz(target, made, mode)
    else:
        write_png(target, made, mode, compress_level)


def _transformed(
    job: Job, fn: ImageFn, max_pixels: int, size: tuple[int, int] | None
) -> dict[str, ImageSet] | np.ndarray:
    """``fn`` applied to a job's input: an npz's splits, or one image (H, W, 3)."""
    if job.source.suffix.lower() == ".npz":
        if size is not None:
            raise InputError(f"{job.source}: --size resizes image files, not npz arrays")
        splits = load_npz(job.source, max_pixels)
        for split, data in splits.items():
            ids = [f"{job.image_id}/{split}/{i}" for i in range(len(data))]
            data.images = fn(data.images, ids)
        return splits
    image = read_image(job.source, max_pixels)
    image = torch.from_numpy(fit_image(image, size) if size else image)[None]
    return fn(image, [job.image_id])[0].numpy()


def first_size(
    jobs: list[Job], max_pixels: int, size: tuple[int, int] | None
) -> tuple[int, int] | None:
    """(H, W) of the first input that reads (``size`` when given); ``None`` if none does."""
    if size is not None:
        return size
    for job in jobs:
        try:
            made = _transformed(job, lambda images, ids: images, max_pixels, None)
        except KeylessError:
            continue  # its error comes when it is written
        images = next(iter(made.values())).images if isinstance(made, dict) else made
        return tuple(images.shape[-3:-1])
    return None


def check_written(
    jobs: list[Job],
    out_dir: Path,
    fn: ImageFn,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    size: tuple[int, int] | None = None,
) -> None:
    """Refuse to resume into ``out_dir`` if the first output already there is not what ``fn``
    makes of its input now: with keys that follow the image's name (a seed, a master key, a
    common key file), another seed or key would mix two keys in one upload, or keep the noise
    of a decryption under a wrong key, without a word."""
    job = next((job for job in jobs if output_path(job, out_dir).exists()), None)
    if job is None:
        return
    target, made = output_path(job, out_dir), _transformed(job, fn, max_pixels, size)
    if isinstance(made, dict):
        written = load_npz(target, max_pixels)
        same = written.keys() == made.keys() and all(
            torch.equal(written[s].images, made[s].images) for s in made
        )
    else:
        same = np.array_equal(read_image(target, max_pixels), made)
    if not same:
        raise KeyMaterialError(
            f"{target}: already written from {job.source}, but not as this call writes it "
            "(another seed, key or size?); write into a new --out"
        )


@dataclass
class KeyPlan:
    """How each image gets its key: from a source (ids used when it is reproducible) or common.

    A common key is loaded from ``common_path`` or, when the file does not exist yet and
    ``create`` is set, drawn from the CSPRNG at the size of the first image and saved there.
    """

    cipher: Cipher
    source: KeySource | None = None
    common_path: Path | None = None
    create: bool = False
    _common: Key | None = None
    _fits: set[tuple[int, int]] = field(default_factory=set)  # image sizes the common key fits

    @classmethod
    def for_mode(
        cls,
        cipher: Cipher,
        keys: KeyMode,
        seed: int | None = None,
        key_file: Path | str | None = None,
        decrypting: bool = False,
    ) -> KeyPlan:
        """The plan for key mode ``keys`` (:mod:`keyless.keymodes`; one ``encrypt`` or, when
        ``decrypting``, ``decrypt`` takes): ``seed`` needs ``seed``; ``master-key`` needs
        ``key_file``, a master secret; ``common`` needs ``key_file``, the common key (made at
        the first image's size when encrypting and the file does not exist yet);
        ``independent`` takes neither. One-line errors, in the command line's terms."""
        mode = key_mode(keys, "decrypt" if decrypting else "encrypt")
        if (seed is None) == (mode == "seed"):
            raise ConfigError(f"--keys {mode} needs --seed" if seed is None else
                              f"--seed goes with --keys seed, not --keys {mode}")  # fmt: skip
        if (key_file is None) == (mode in ("common", "master-key")):
            raise ConfigError(f"--keys {mode} needs --key-file" if key_file is None else
                              f"--key-file goes with --keys common or master-key, not --keys "
                              f"{mode}")  # fmt: skip
        if mode == "common":
            plan = cls(cipher, common_path=Path(key_file), create=not decrypting)
            if decrypting:
                plan._common = cipher.load_key(plan.common_path)  # one line if it is missing
            return plan
        if mode == "master-key":
            return cls(cipher, MasterKeySource.load(Path(key_file)))
        return cls(cipher, SeedSource(seed) if mode == "seed" else CsprngSource())

    @property
    def mode(self) -> KeyMode:
        """The key mode this plan follows (what an upload's manifest records)."""
        if self.common_path is not None:
            return "common"
        if isinstance(self.source, MasterKeySource):
            return "master-key"
        return "seed" if isinstance(self.source, SeedSource) else "independent"

    def planned(self) -> Manifest:
        """What a manifest says before any image: the cipher, the key mode, and the check value
        of the master key or of the common key (once its file exists)."""
        master = self.source.check_value() if isinstance(self.source, MasterKeySource) else None
        common = self._common
        if common is None and self.common_path is not None and self.common_path.exists():
            common = self.cipher.load_key(self.common_path)
        return Manifest(
            self.cipher,
            self.mode,
            master,
            common_key_check=check_value(common.to_bytes(), "common-key-check") if common else None,
        )

    def keys(self, images: torch.Tensor, ids: list[str]) -> Key:
        n, h, w, _ = images.shape
        if self.common_path is None:
            assert self.source is not None
            return self.cipher.keygen(
                n, (h, w), self.source, ids if self.source.reproducible else None
            )
        return self.prepare((h, w))

    def prepare(self, size: tuple[int, int]) -> Key | None:
        """The common key, loaded, or drawn for (H, W) ``size`` images and saved when its file
        does not exist yet (before worker processes start, so that they share it); ``None`` in
        the other key modes."""
        if self.common_path is None:
            return None
        if self._common is None:
            if self.common_path.exists() or not self.create:
                self._common = self.cipher.load_key(self.common_path)
            else:
                self._common = self.cipher.keygen(1, size)
                self._common.save(self.common_path)
        self._check_common(size)
        return self._common

    def _check_common(self, size: tuple[int, int]) -> None:
        """Refuse a common key that does not fit one image of ``size`` (H, W), naming its file
        (a key for another size, for no image or for several)."""
        if size in self._fits:
            return
        try:
            self.cipher.encrypt(torch.zeros((1, *size, 3), dtype=torch.uint8), self._common)
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{self.common_path}: {exc}") from None
        self._fits.add(size)
