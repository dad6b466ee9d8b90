"""A folder of photo-sized PNG images for the scale benchmark: CIFAR-10 upsampled (Lanczos) to
``--size``, laid out as ``train/<class>/<index>.png`` and ``test/<class>/<index>.png`` (what
``keyless encrypt`` and ``keyless train`` read). Made on demand, never committed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from keyless.data import CIFAR10_CLASSES


def make_photos(data: Path, out: Path, train: int, test: int, size: int) -> int:
    """Write ``train`` training and ``test`` test images of ``size`` x ``size``; images already
    there are kept. Returns the number written."""
    written = 0
    with np.load(data) as arrays:
        for split, count in (("train", train), ("test", test)):
            images, labels = arrays[f"x_{split}"][:count], arrays[f"y_{split}"][:count]
            for index, (image, label) in enumerate(zip(images, labels, strict=True)):
                path = out / split / CIFAR10_CLASSES[int(label)] / f"{index:06d}.png"
                if path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                photo = Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS)
                photo.save(path, format="PNG")
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10 npz")
    parser.add_argument("--out", type=Path, required=True, help="folder to fill")
    parser.add_argument("--train", type=int, default=20_000, help="training images")
    parser.add_argument("--test", type=int, default=0, help="test images")
    parser.add_argument("--size", type=int, default=224, help="side in pixels")
    args = parser.parse_args()
    start = time.perf_counter()
    written = make_photos(args.data, args.out, args.train, args.test, args.size)
    print(f"{written} photos written to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
