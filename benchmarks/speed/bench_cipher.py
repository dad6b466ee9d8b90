"""Encrypt the 50,000 CIFAR-10 training images: keyless vs a memory copy vs a numpy reference.

    python benchmarks/speed/bench_cipher.py --data ../shared/data/cifar10/cifar10.npz

Each figure is the median of ``--repeats`` timed runs after one warm-up run (which also compiles
the numba kernel). keyless's time includes drawing every key from the OS CSPRNG.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time

import numpy as np
import torch

from keyless.cipher import PERMUTATIONS, PixelCipher
from keyless.data import load_npz
from keyless.keys import CsprngSource


def numpy_reference(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The straightforward version: a coin flip per value, then a gather per pixel."""
    flip = rng.random(x.shape) < 0.5
    inverted = np.where(flip, 255 - x, x)
    order = np.asarray(PERMUTATIONS)[rng.integers(0, 6, x.shape[:-1])]
    return np.take_along_axis(inverted, order, axis=-1)


def keyless_keygen(x: torch.Tensor):
    return PixelCipher().keygen(len(x), tuple(x.shape[1:3]), CsprngSource())


def keyless_encrypt(x: torch.Tensor) -> torch.Tensor:
    return PixelCipher().encrypt(x, keyless_keygen(x))


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/cifar10/cifar10.npz")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x = load_npz(args.data)["train"].images
    array, rng = x.numpy(), np.random.default_rng(0)
    rows = {
        "memory copy (torch clone)": median_seconds(x.clone, args.repeats),
        "keyless PE, CSPRNG keys included": median_seconds(
            lambda: keyless_encrypt(x), args.repeats
        ),
        "- of which: key generation (AES-CTR + rejection)": median_seconds(
            lambda: keyless_keygen(x), args.repeats
        ),
        "- of which: encryption kernel": median_seconds(
            functools.partial(PixelCipher().encrypt, x, keyless_keygen(x)), args.repeats
        ),
        "numpy reference": median_seconds(lambda: numpy_reference(array, rng), args.repeats),
    }
    print(f"| method | seconds for {len(x)} images | images/s |\n|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} | {len(x) / seconds:,.0f} |")
    speedup = rows["numpy reference"] / rows["keyless PE, CSPRNG keys included"]
    print(f"\nkeyless is {speedup:.1f}x faster than the numpy reference")
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(json.dumps({"seconds": rows, "speedup": speedup, "machine": machine}))


if __name__ == "__main__":
    main()
