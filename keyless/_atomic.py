"""Atomic file writes: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path | str, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The file gets ``mode``, or by default the usual permissions of a new file (0o666 less the
    umask) rather than the temporary file's owner-only 0o600. A folder made for an owner-only
    ``mode`` is owner-only (0o700) too.
    """
    path = Path(path)
    private = mode is not None and not mode & 0o077
    make_folders(path.parent, 0o700 if private else 0o777)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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


def remove_leftovers(folder: Path | str, targets: Iterable[Path]) -> int:
    """Delete the temporary files that :func:`atomic_path` left under ``folder`` for any of
    ``targets`` (a process killed while writing them); returns how many. Temporary files of
    other paths are left alone."""
    wanted = {(Path(t).parent, Path(t).name) for t in targets}
    removed = 0
    for root, _, names in os.walk(folder):
        for name in names:
            target = name[1:].rsplit(".", 2)[0]  # ".<target>.<random>.tmp"
            if name.startswith(".") and name.endswith(".tmp") and (Path(root), target) in wanted:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(Path(root) / name)
                    removed += 1
    return removed
