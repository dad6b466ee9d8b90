"""Raise the accuracy of the privacy dial's hiding settings on a validation split, never on the
test set.

Each variant is a key-free setting (a cipher and its options) with the recipe that serves it and
a few changes, trained with independent keys on the CIFAR-10 training set less a 5,000-image
validation split at the frontier's budget; compare ``val_acc`` of the last epoch in each record
(``history``). The test set is read only by the frontier's own runs (privacy_frontier.sh).

    python benchmarks/experiments/tune_dial.py --data ../shared/data/cifar10/cifar10.npz \\
        --out runs/dial [--epochs 5] [--seed N] [VARIANT ...]

Finished variants (record.json present) are skipped, interrupted ones resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from keyless.train import recipe, train

CPU_WIDTH: dict[str, Any] = {"widths": [32, 64, 128]}
WIDE: dict[str, Any] = {"widths": [64, 128, 256]}


def scramble(block: int, noise: float = 0.0) -> dict[str, Any]:
    """pe-scramble with ``block``-pixel blocks (and owner noise), on the bag recipe."""
    cipher = {"name": "pe-scramble", "block_size": block, "noise": noise}
    return {"recipe": "bag", "cipher": cipher}


VARIANTS: dict[str, dict[str, Any]] = {
    "scramble8": scramble(8),
    "scramble8-wide": {**scramble(8), "model_kwargs": WIDE},
    "scramble8-shift1": {**scramble(8), "block_translate": 1},
    "scramble8-shift2": {**scramble(8), "block_translate": 2},
    "scramble8-noflip": {**scramble(8), "flip": False},
    "scramble4": scramble(4),
    "scramble4-wide": {**scramble(4), "model_kwargs": WIDE},
    "scramble4-shift1": {**scramble(4), "block_translate": 1},
    "scramble16": scramble(16),
    "scramble16-shift2": {**scramble(16), "block_translate": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    for name in args.variants:
        out = args.out / name
        if (out / "record.json").exists():
            continue
        changes = {"model_kwargs": CPU_WIDTH, "keys": "independent", "val_size": 5000,
                   "seed": args.seed, "epochs": args.epochs, **VARIANTS[name]}  # fmt: skip
        config = recipe(changes.pop("recipe"), **changes)
        record = train(config, args.data, out, resume=True, command=" ".join(sys.argv))
        print(name, "val_acc", record["history"][-1]["val_acc"], flush=True)


if __name__ == "__main__":
    main()
