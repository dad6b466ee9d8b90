"""Pack a CIFAR-style npz into lossless WebP tiles, or unpack them back, byte for byte.

The device tool carries at most 64 MiB a call; CIFAR-10's npz is 162 MiB, its WebP tiles about
101 MB, so two calls carry it (about 55 % of the raw pixels; zlib keeps 92 %).

    python tools/webp_pack.py pack DATA.npz OUT_DIR --parts 2
    python tools/webp_pack.py unpack OUT_DIR/part-*/ DATA.npz
"""

from __future__ import annotations

import argparse
import io
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

TILE = 50  # images per tile side: 50 x 50 images of 32 x 32 is a 1600 x 1600 picture


def encode(images: np.ndarray, side: int = TILE) -> bytes:
    """(n, 32, 32, 3) uint8, n a multiple of ``side`` -> one lossless WebP of ``side`` images
    a row."""
    rows = len(images) // side
    tile = images.reshape(rows, side, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(rows * 32, -1, 3)
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, "WEBP", lossless=True, quality=100, method=5)
    return buffer.getvalue()


def decode(blob: bytes) -> np.ndarray:
    tile = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
    rows, side = tile.shape[0] // 32, tile.shape[1] // 32
    return tile.reshape(rows, 32, side, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)


def pack(data: Path, out: Path, parts: int, side: int = TILE) -> None:
    """``side`` x ``side`` images a tile (the tests take small ones)."""
    arrays = dict(np.load(data))
    if any(len(arrays[k]) % side for k in ("x_train", "x_test")):
        raise SystemExit(f"{data}: image counts must be multiples of {side} to tile")
    chunks = [(name, start) for name in ("x_train", "x_test")
              for start in range(0, len(arrays[name]), side * side)]  # fmt: skip
    if not 1 <= parts <= len(chunks):
        raise SystemExit(f"--parts must be 1 to {len(chunks)} (one tile of images each at least)")
    with ProcessPoolExecutor() as pool:
        tiles = [arrays[n][s : s + side * side] for n, s in chunks]
        blobs = list(pool.map(encode, tiles, [side] * len(tiles)))
    for i, ((name, start), blob) in enumerate(zip(chunks, blobs, strict=True)):
        folder = out / f"part-{i * parts // len(chunks)}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}-{start:06d}.webp").write_bytes(blob)
    labels = {k: {"dtype": v.dtype.str, "values": v.tolist()} for k, v in arrays.items()
              if k.startswith("y_")}  # fmt: skip
    (out / f"part-{parts - 1}" / "labels.json").write_text(json.dumps(labels))


def unpack(folders: list[Path], data: Path) -> None:
    files = sorted((f for folder in folders for f in folder.glob("*.webp")), key=lambda f: f.name)
    arrays: dict[str, list[np.ndarray]] = {"x_train": [], "x_test": []}
    for f in files:  # by name: each split's tiles in image order, whatever folder holds them
        arrays[f.name.rsplit("-", 1)[0]].append(decode(f.read_bytes()))
    labels = json.loads(next(f / "labels.json" for f in folders if (f / "labels.json").exists())
                        .read_text())  # fmt: skip
    out = {k: np.concatenate(v) for k, v in arrays.items()}
    out.update({k: np.asarray(v["values"], dtype=v["dtype"]) for k, v in labels.items()})
    np.savez(data, **out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("data", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--parts", type=int, default=2)
    u = sub.add_parser("unpack")
    u.add_argument("folders", type=Path, nargs="+")
    u.add_argument("data", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data, args.out, args.parts)
    else:
        unpack(args.folders, args.data)


if __name__ == "__main__":
    main()
