"""Datasets on disk: CIFAR-10 npz or python archive, and image folders with class subfolders."""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from keyless._atomic import atomic_path
from keyless.data._io import IMAGE_SUFFIXES, read_image
from keyless.errors import InputError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CIFAR_MEMBERS = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}


@dataclass
class ImageSet:
    """Images with labels: ``images`` (N, H, W, 3) uint8, ``labels`` (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return self.images.shape[1], self.images.shape[2]

    def subset(self, index: torch.Tensor | slice) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.classes)

    def head(self, n: int) -> ImageSet:
        """The first ``n`` images."""
        return self.subset(slice(0, n))


def fingerprint(splits: dict[str, ImageSet]) -> str:
    """SHA-256 over every split's name, images and labels: which data a run saw, whatever file
    or format they were read from (class names aside: older keyless named some otherwise)."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        split = splits[name]
        digest.update(f"{name}:{tuple(split.images.shape)}\n".encode())
        digest.update(split.images.contiguous().numpy())
        digest.update(split.labels.to(torch.int64).contiguous().numpy())
    return digest.hexdigest()


def load_splits(path: Path | str) -> dict[str, ImageSet]:
    """Load a dataset as named splits.

    ``path`` may be an ``.npz`` with ``x_train, y_train, x_test, y_test``; a CIFAR-10 python
    archive (``cifar-10-python.tar.gz``) or its extracted ``cifar-10-batches-py`` folder; STL-10's
    ``stl10_binary.tar.gz`` or ``stl10_binary`` folder (:func:`load_stl10`); a folder
    with ``train/`` and ``test/`` image folders; a folder holding one npz (what ``keyless
    encrypt`` makes of one); or one image folder (returned as ``train``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".npz":
        return load_npz(path)
    if path.name.startswith("stl10_binary") or (path / "train_X.bin").exists():
        return load_stl10(path)
    if path.name.endswith((".tar.gz", ".tgz")):
        return _load_cifar_tar(path)
    if not path.is_dir():
        raise InputError(
            f"{path}: not a dataset (an npz, a CIFAR-10 or STL-10 archive, or a folder)"
        )
    if (path / "data_batch_1").exists():
        return {s: _cifar_split(lambda m: (path / m).read_bytes(), s) for s in _CIFAR_MEMBERS}
    if (path / "cifar-10-batches-py").is_dir():
        return load_splits(path / "cifar-10-batches-py")
    if (path / "train").is_dir():
        train = load_image_folder(path / "train")
        test = path / "test"
        splits = {"train": train, **({"test": load_image_folder(test, train.classes)}
                                     if test.is_dir() else {})}  # fmt: skip
        _check_one_size(splits, path)
        return splits
    npz = sorted(path.glob("*.npz"))
    if len(npz) == 1 and not any(p.is_dir() for p in path.iterdir()):  # e.g. an encrypted upload
        return load_npz(npz[0])
    return {"train": load_image_folder(path)}


MAX_CLASSES = 100_000  # labels 0..MAX_CLASSES - 1; a larger one is a broken file, not a class


def load_npz(path: Path | str, max_pixels: int | None = None) -> dict[str, ImageSet]:
    """Load ``x_train, y_train, x_test, y_test`` (uint8 NHWC images of one size, integer labels
    from 0) from an npz file holding those arrays and no others. Every array's header is checked
    before anything is decompressed: an array larger than its zip member can hold is refused
    (:func:`_npz_shapes`), and with ``max_pixels`` so are images larger than that."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: a single .npy array, not an npz of {', '.join(NPZ_KEYS)}")
        with data:
            missing = [k for k in NPZ_KEYS if k not in data.files]
            extra = [k for k in data.files if k not in NPZ_KEYS]
            if missing or extra:
                found = ", ".join(data.files) or "nothing"
                raise InputError(
                    f"{path}: npz must hold exactly {', '.join(NPZ_KEYS)}; found {found}"
                )
            shapes = _npz_shapes(data, path)
            if max_pixels is not None:
                _check_image_size(shapes, path, max_pixels)
            arrays = {k: data[k] for k in NPZ_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable npz file ({exc or type(exc).__name__})") from None
    images, labels = {}, {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if (
            x.dtype != np.uint8
            or x.ndim != 4
            or x.shape[-1] != 3
            or y.ndim != 1
            or len(y) != len(x)
        ):
            raise InputError(
                f"{path}: x_{split} must be (N, H, W, 3) uint8 with one label each in y_{split}, "
                f"got {x.dtype} {x.shape} and y_{split} of shape {y.shape}"
            )
        images[split], labels[split] = torch.from_numpy(x), _labels(y, f"{path}: y_{split}")
    classes = npz_classes(max(int(y.max(initial=0)) for y in labels.values()) + 1)
    splits = {s: ImageSet(images[s], torch.from_numpy(labels[s]), classes) for s in images}
    _check_one_size(splits, path)
    return splits


def _check_one_size(splits: dict[str, ImageSet], where: Path | str) -> None:
    """Every image of ``splits`` of one size, at least 1 x 1 pixels (empty splits aside): else one
    line naming ``where`` (training could not batch them, nor a key fit them all)."""
    sizes = {name: tuple(s.images.shape[1:3]) for name, s in splits.items() if len(s)}
    for name, (h, w) in sizes.items():
        if not h or not w:
            raise InputError(f"{where}: the {name} images are {w}x{h} pixels; an image needs some")
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{name} {w}x{h}" for name, (h, w) in sizes.items())
        raise InputError(f"{where}: images of one data set must have one size, got {found}; "
                         "resize them")  # fmt: skip


def npz_classes(n: int) -> tuple[str, ...]:
    """An npz file's class names: CIFAR-10's for 10 classes, else the labels ``0`` .. ``n - 1``
    (the file holds no names; one class per label up to the largest in either split)."""
    return CIFAR10_CLASSES if n == 10 else tuple(str(i) for i in range(n))


def split_classes(splits: dict[str, ImageSet]) -> tuple[str, ...]:
    """The class names of ``splits`` (every split of a dataset shares its training classes)."""
    return next(iter(splits.values())).classes


def adopt_classes(
    splits: dict[str, ImageSet], recorded: Sequence[str]
) -> dict[str, ImageSet] | None:
    """``splits`` under the class names recorded for them (an upload's manifest, a run's
    checkpoint), or ``None`` if they hold other classes. Older keyless gave an npz of fewer than
    10 classes CIFAR-10's ten names (and its models ten outputs); either side may be from then
    (an old upload, an old run), and the record's names win, so both still load and resume."""
    recorded = tuple(recorded)
    found = split_classes(splits) if splits else recorded
    if found == recorded or _older_name_of(found, recorded) or _older_name_of(recorded, found):
        return {name: replace(s, classes=recorded) for name, s in splits.items()}
    return None


def classes_text(classes: Sequence[str], shown: int = 6) -> str:
    """Class names as an error message lists them: all of a few, the first of many and how many
    (a broken npz's labels can name 100,000 classes)."""
    names = [str(name) for name in classes]
    if len(names) <= shown:
        return repr(names)
    return f"[{', '.join(map(repr, names[:shown]))}, ...] ({len(names)} classes)"


def _older_name_of(old: tuple[str, ...], new: tuple[str, ...]) -> bool:
    """Whether ``old`` is what older keyless named the npz classes now named ``new``."""
    return old == CIFAR10_CLASSES and len(new) < 10 and new == npz_classes(len(new))


_DEFLATE_RATIO = 1032  # the most deflate expands: a member holds at most this x its packed bytes


def _npz_shapes(data: np.lib.npyio.NpzFile, path: Path | str) -> dict[str, tuple[int, ...]]:
    """Each array's shape, from its .npy header alone. An array bigger than its zip member can
    hold (its stated size, and what its compressed bytes can expand to) is refused, naming the
    file: numpy allocates what a header claims before reading, so a small file could claim 10^9
    images."""
    archive, shapes = os.path.getsize(path), {}
    for info in data.zip.infolist():
        name = info.filename.removesuffix(".npy")
        with data.zip.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"{name}: .npy format {version[0]}.{version[1]} is not read")
            read = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
            shape, _, dtype = read(member)
        packed = min(info.compress_size, archive)
        expands = {zipfile.ZIP_STORED: packed, zipfile.ZIP_DEFLATED: _DEFLATE_RATIO * packed}
        room = min(info.file_size, expands.get(info.compress_type, info.file_size))
        size = math.prod(shape) * dtype.itemsize
        if size > room:
            claimed = "x".join(map(str, shape))
            raise InputError(f"{path}: {name} claims a {claimed} {dtype} array ({size:,} bytes), "
                             f"more than its {room:,} bytes can hold; a damaged or crafted "
                             "file")  # fmt: skip
        shapes[name] = shape
    return shapes


def _check_image_size(
    shapes: dict[str, tuple[int, ...]], path: Path | str, max_pixels: int
) -> None:
    for split in ("train", "test"):
        shape = shapes[f"x_{split}"]
        pixels = shape[1] * shape[2] if len(shape) == 4 else 0
        if pixels > max_pixels:
            raise InputError(
                f"{path}: x_{split} images are {shape[2]}x{shape[1]} = {pixels} pixels, above the "
                f"limit of {max_pixels} (raise it with --max-pixels if the file is trusted)"
            )


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    """Integer labels in 0..MAX_CLASSES - 1 as int64, or a one-line error (never wrapped)."""
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise InputError(f"{where}: labels must be integers, got {y.dtype}")
    labels = y.astype(np.int64)
    if len(labels) and not (labels.min() >= 0 and labels.max() < MAX_CLASSES):
        raise InputError(
            f"{where}: labels must be 0 to {MAX_CLASSES - 1}, got {labels.min()} to {labels.max()}"
        )
    return labels


def _label_dtype(labels: np.ndarray) -> type[np.integer]:
    """The smallest unsigned type that holds every label exactly (uint8 for CIFAR-10)."""
    return np.uint8 if labels.max(initial=0) < 256 else np.uint32


def save_npz(path: Path | str, splits: dict[str, ImageSet], mode: int | None = None) -> None:
    """Write splits as ``x_<split>, y_<split>`` arrays in an npz, atomically (permissions
    ``mode``)."""
    arrays = {}
    for split, data in splits.items():
        arrays[f"x_{split}"] = data.images.cpu().numpy()
        labels = data.labels.cpu().numpy()
        arrays[f"y_{split}"] = labels.astype(_label_dtype(labels))  # exact, never wrapped
    with atomic_path(path, mode) as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)


STL10_MD5 = {  # the official stl10_binary members (train and test; unlabeled is not read)
    "train_X.bin": "918c2871b30a85fa023e0c44e0bee87f",
    "train_y.bin": "5a34089d4802c674881badbb80307741",
    "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82",
    "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e",
}
STL10_CLASSES = (
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
)  # fmt: skip


def load_stl10(path: Path | str, checksums: dict[str, str] | None = None) -> dict[str, ImageSet]:
    """STL-10's labelled splits (96x96; 5,000 train, 8,000 test) from the official
    ``stl10_binary.tar.gz`` or its extracted ``stl10_binary`` folder, each member checked against
    its published MD5 (``checksums``; default :data:`STL10_MD5`)."""
    path, checksums = Path(path), checksums or STL10_MD5

    def member(name: str) -> bytes:
        if path.is_dir():
            data = (path / name).read_bytes() if (path / name).exists() else None
        else:
            with tarfile.open(path, "r:gz") as tar:
                found = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name == name]
                data = tar.extractfile(found[0]).read() if found else None
        if data is None:
            raise InputError(f"{path}: lacks {name}; is it stl10_binary(.tar.gz)?")
        if hashlib.md5(data).hexdigest() != checksums[name]:
            raise InputError(f"{path}: {name} checksum mismatch (not the official STL-10 file)")
        return data

    try:
        splits = {}
        for split in ("train", "test"):
            pixels = np.frombuffer(member(f"{split}_X.bin"), np.uint8)
            images = pixels.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)  # stored column-major
            labels = np.frombuffer(member(f"{split}_y.bin"), np.uint8).astype(np.int64) - 1
            if len(labels) != len(images) or not ((labels >= 0) & (labels < 10)).all():
                raise InputError(f"{path}: {split} labels do not match the images")
            splits[split] = ImageSet(torch.from_numpy(np.ascontiguousarray(images)),
                                     torch.from_numpy(labels), STL10_CLASSES)  # fmt: skip
        return splits
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a readable STL-10 archive ({exc})") from None


def _load_cifar_tar(path: Path) -> dict[str, ImageSet]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                if name not in members:
                    raise InputError(f"{path}: archive lacks {name}; is it cifar-10-python.tar.gz?")
                return tar.extractfile(members[name]).read()

            return {s: _cifar_split(read, s) for s in _CIFAR_MEMBERS}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable tar.gz archive ({exc})") from None


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR batch holds (dicts, lists, bytes, numbers, numpy arrays) and
    nothing else: any other global, the way a crafted pickle runs code, is refused."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype")}:
            return getattr(np, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
            return getattr(core.multiarray, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 stores bytes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_batch(read, member: str) -> dict:
    try:
        batch = _BatchUnpickler(io.BytesIO(read(member)), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{member}: not a CIFAR-10 batch ({exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise InputError(f"{member}: not a CIFAR-10 batch (no data and labels)")
    return batch


def _cifar_split(read, split: str) -> ImageSet:
    xs, ys = [], []
    for member in _CIFAR_MEMBERS[split]:
        batch = _load_batch(read, member)
        try:
            x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            y = np.asarray(batch[b"labels"], np.int64).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InputError(f"{member}: not a CIFAR-10 batch ({exc})") from None
        if len(x) != len(y) or (len(y) and not 0 <= y.min() <= y.max() < 10):
            raise InputError(f"{member}: not a CIFAR-10 batch ({len(x)} images, labels 0-9 "
                             f"expected for each)")  # fmt: skip
        xs.append(x)
        ys.append(y)
    images = torch.from_numpy(np.ascontiguousarray(np.concatenate(xs)))
    return ImageSet(images, torch.from_numpy(np.concatenate(ys)), CIFAR10_CLASSES)


def find_files(folder: Path, suffixes: Iterable[str]) -> tuple[list[Path], list[InputError]]:
    """Files under ``folder`` with one of ``suffixes``, recursively, sorted; links to folders
    are not followed (no loops). Each folder that cannot be listed, and each file of those
    suffixes that cannot be looked at (a loop of links, a folder that cannot be entered), is an
    error; the others are found all the same."""
    wanted, found, errors = set(suffixes), [], []

    def report(exc: OSError) -> None:
        errors.append(InputError(f"{exc.filename}: cannot list this folder ({exc.strerror})"))

    for root, _, files in os.walk(folder, onerror=report):
        for path in (Path(root) / name for name in files):
            if path.suffix.lower() not in wanted:
                continue
            try:
                if stat.S_ISREG(path.stat().st_mode):
                    found.append(path)
            except FileNotFoundError:  # a link to nothing, or a file removed meanwhile
                continue
            except OSError as exc:
                errors.append(InputError(f"{path}: cannot read ({exc.strerror})"))
    return sorted(found), errors


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, in sorted order; a folder that cannot be
    listed is an error (a data set must be complete)."""
    files, errors = find_files(folder, IMAGE_SUFFIXES)
    if errors:
        raise errors[0]
    return files


def load_image_folder(folder: Path | str, classes: Sequence[str] | None = None) -> ImageSet:
    """Load ``folder/<class>/<image>`` files of one size as an :class:`ImageSet`; its classes
    are its sub-folders, sorted, or ``classes`` (a test split takes its training split's, so
    that a label means one class in both), of which each sub-folder must be one."""
    folder = Path(folder)
    found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    if not found:
        raise InputError(f"{folder}: expected one subfolder per class, found none")
    stray = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if stray:
        raise InputError(f"{folder / stray[0]}: an image outside any class folder")
    unknown = sorted(set(found) - set(classes or found))
    if unknown:
        raise InputError(f"{folder}: class folders {unknown} are not among the training classes")
    classes = tuple(classes or found)
    images, labels, first = [], [], None
    for label, name in enumerate(classes):
        if name not in found:
            continue
        for file in list_images(folder / name):
            images.append(read_image(file))
            labels.append(label)
            first = first or file
            if images[-1].shape != images[0].shape:
                (h, w), (h0, w0) = images[-1].shape[:2], images[0].shape[:2]
                raise InputError(f"{file}: {w}x{h} pixels, but {first} has {w0}x{h0}; the images "
                                 "of a data set must have one size (resize them)")  # fmt: skip
    if not images:
        raise InputError(f"{folder}: no images found in its class subfolders")
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels), classes)
