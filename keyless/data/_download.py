"""Fetching CIFAR-10 from its official site, checked against its published MD5."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

from tqdm import tqdm

from keyless._atomic import atomic_path
from keyless.errors import InputError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DATA_ENV = "KEYLESS_DATA"


def download_cifar10(folder: Path | str, url: str = CIFAR10_URL) -> Path:
    """Download ``cifar-10-python.tar.gz`` into ``folder`` (once) and verify its MD5."""
    target = Path(folder) / "cifar-10-python.tar.gz"
    if target.exists():
        return target
    try:
        with urllib.request.urlopen(url, timeout=30) as response, atomic_path(target) as tmp:
            digest = hashlib.md5()
            total = int(response.headers.get("Content-Length", 0)) or None
            with (
                tmp.open("wb") as f,
                tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10") as bar,
            ):
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if digest.hexdigest() != CIFAR10_MD5:
                raise InputError(
                    f"{url}: checksum mismatch ({digest.hexdigest()} != {CIFAR10_MD5})"
                )
    except (OSError, http.client.HTTPException) as exc:  # a dropped connection too
        raise InputError(
            f"cannot download CIFAR-10 from {url} ({exc!r}); pass --data or set {DATA_ENV}"
        ) from None
    return target


def find_dataset(path: Path | str | None, cache: Path | str = "~/.cache/keyless") -> Path:
    """The dataset: ``path``, else ``$KEYLESS_DATA``, else CIFAR-10 downloaded into ``cache``."""
    if path is not None:
        return Path(path)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return download_cifar10(Path(cache).expanduser())
