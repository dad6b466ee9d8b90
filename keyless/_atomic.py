"""Atomic file writes: a temporary file in the same folder, then a rename.

The temporary file of ``NAME`` is ``.NAME.XXXXXXXX.tmp`` (8 random characters); for a name too
long to take the 14 more characters within the file system's limit of 255 bytes, ``NAME`` is
cut and ends in a hash of the whole (:func:`temp_prefix`), so every name that fits can be
written. A process killed while writing leaves its temporary file; :func:`remove_leftovers`
removes those of given outputs, when the command runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows)
_RANDOM = re.compile(r"[a-z0-9_]{8}\.tmp")  # what mkstemp adds after the prefix
_ADDED = len(".") + 8 + len(".tmp")  # and the prefix's own leading dot


def temp_prefix(name: str) -> str:
    """The prefix of ``name``'s temporary files: ``.NAME.``, or for a long name ``.`` + its
    start + ``~`` + 16 hex digits of its SHA-256 + ``.``, so that the whole stays within
    :data:`NAME_MAX` bytes."""
    raw = os.fsencode(name)
    if 1 + len(raw) + _ADDED <= NAME_MAX:
        return f".{name}."
    digest = hashlib.sha256(raw).hexdigest()[:16].encode()
    keep = NAME_MAX - _ADDED - 1 - 1 - len(digest)
    return os.fsdecode(b"." + raw[:keep] + b"~" + digest + b".")


@contextlib.contextmanager
def atomic_path(path: Path | str, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The file gets ``mode``, or by default the usual permissions of a new file (0o666 less the
    umask) rather than the temporary file's owner-only 0o600. A folder made for an owner-only
    ``mode`` is owner-only (0o700) too. An ``OSError`` that names no file, or the temporary one
    (a full disk, a file size limit, a folder that cannot be written), names ``path``.
    """
    path = Path(path)
    private = mode is not None and not mode & 0o077
    make_folders(path.parent, 0o700 if private else 0o777)  # an error names the folder
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None or os.fspath(exc.filename) == tmp:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def remove_leftovers(folder: Path | str, targets: Iterable[Path]) -> int:
    """Delete the temporary files that :func:`atomic_path` left under ``folder`` for any of
    ``targets`` (a process killed while writing them); returns how many. Temporary files of
    other paths, and files that only look like them, are left alone."""
    prefixes: dict[Path, set[str]] = {}
    for target in targets:
        target = Path(target)
        prefixes.setdefault(target.parent, set()).add(temp_prefix(target.name))
    removed = 0
    for parent, wanted in prefixes.items():
        if Path(folder) not in (parent, *parent.parents):
            continue
        try:
            names = [entry.name for entry in os.scandir(parent) if entry.name.endswith(".tmp")]
        except OSError:  # not there yet, or not a folder: nothing left in it
            continue
        for name in names:
            if name[: -len("XXXXXXXX.tmp")] in wanted and _RANDOM.fullmatch(name[-12:]):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(parent / name)
                    removed += 1
    return removed


def make_folders(folder: Path | str, mode: int) -> None:
    """``mkdir -p``, where every folder made gets ``mode`` (less the umask), parents included
    (``Path.mkdir`` makes them with the default mode); a folder already there keeps its own."""
    folder = Path(folder)
    missing = []
    for path in (folder, *folder.parents):
        if path.is_dir():
            break
        missing.append(path)
    for path in reversed(missing):
        path.mkdir(mode=mode, exist_ok=True)


def _umask() -> int:
    """The process umask (read once, at import: reading it sets it for a moment)."""
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _umask()


def write_bytes_atomic(path: Path | str, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)
