"""A folder of photo-sized PNG images for the scale benchmark: CIFAR-10 upsampled (Lanczos) to
``--size``, laid out as ``train/<class>/<index>.png`` and ``test/<class>/<index>.png`` (what
``keyless encrypt`` and ``keyless train`` read). Made on demand, never committed.

``--train`` beyond CIFAR-10's 50,000 adds mirrored copies of its first training images (index
50,000 on), so that an upload of 224 x 224 ciphertexts can pass 10 GB. PNGs are written at zlib
level 1 over ``--workers`` processes (the photos only feed ``keyless encrypt``).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from keyless.data import CIFAR10_CLASSES


def _write(args: tuple[Path, np.ndarray, np.ndarray, list[Path], int]) -> int:
    """Write each image at its path (upsampled to ``size``), keeping those already there."""
    _, images, mirror, paths, size = args
    written = 0
    for image, flip, path in zip(images, mirror, paths, strict=True):
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        photo = Image.fromarray(image[:, ::-1] if flip else image)
        photo.resize((size, size), Image.Resampling.LANCZOS).save(path, compress_level=1)
        written += 1
    return written


def make_photos(data: Path, out: Path, train: int, test: int, size: int, workers: int = 1) -> int:
    """Write ``train`` training and ``test`` test images of ``size`` x ``size``; images already
    there are kept. Returns the number written."""
    tasks = []
    with np.load(data) as arrays:
        for split, count in (("train", train), ("test", test)):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            index = np.arange(count) % len(x)
            mirror = np.arange(count) >= len(x)
            paths = [out / split / CIFAR10_CLASSES[int(y[i])] / f"{n:06d}.png"
                     for n, i in enumerate(index)]  # fmt: skip
            for start in range(0, count, 1000):
                part = slice(start, start + 1000)
                tasks.append((out, x[index[part]], mirror[part], paths[part], size))
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(_write, tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10 npz")
    parser.add_argument("--out", type=Path, required=True, help="folder to fill")
    parser.add_argument("--train", type=int, default=20_000, help="training images")
    parser.add_argument("--test", type=int, default=0, help="test images")
    parser.add_argument("--size", type=int, default=224, help="side in pixels")
    parser.add_argument("--workers", type=int, default=1, help="processes")
    args = parser.parse_args()
    start = time.perf_counter()
    written = make_photos(args.data, args.out, args.train, args.test, args.size, args.workers)
    print(f"{written} photos written to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
