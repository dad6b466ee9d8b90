"""Raise the accuracy of the privacy dial's hiding settings on a validation split, never on the
test set.

Each variant is a key-free setting (a cipher and its options) with the recipe that serves it and
a few changes, trained with independent keys on the CIFAR-10 training set less a 5,000-image
validation split at the frontier's budget. Variants are compared by the validation accuracy of
their last epoch (``history`` in each record) and nothing else: training also writes the test
accuracy into every record, which this comparison never reads.

    python benchmarks/experiments/tune_dial.py --data ../shared/data/cifar10/cifar10.npz \\
        --out runs/dial [--epochs 5] [--seed N] [VARIANT ...]
    python benchmarks/experiments/tune_dial.py --out runs/dial --summary

Finished variants (record.json present) are skipped, interrupted ones resume. ``--summary``
prints the finished variants as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from keyless.cipher import ScrambledPixelCipher
from keyless.train import recipe, train

CPU_WIDTH: dict[str, Any] = {"widths": [32, 64, 128]}
WIDE: dict[str, Any] = {"widths": [64, 128, 256]}


def scramble(block: int, noise: float = 0.0) -> dict[str, Any]:
    """pe-scramble with ``block``-pixel blocks (and owner noise), on the bag recipe."""
    return {"recipe": "bag", "cipher": ScrambledPixelCipher(block_size=block, noise=noise)}


VARIANTS: dict[str, dict[str, Any]] = {
    "scramble8": scramble(8),
    "scramble8-wide": {**scramble(8), "model_kwargs": WIDE},
    "scramble8-shift1": {**scramble(8), "block_translate": 1},
    "scramble8-shift2": {**scramble(8), "block_translate": 2},
    "scramble8-noflip": {**scramble(8), "flip": False},
    "scramble8-attention": {**scramble(8), "model_kwargs": {**CPU_WIDTH, "attention_layers": 1}},
    "scramble8-wide-attention": {**scramble(8), "model_kwargs": {**WIDE, "attention_layers": 1}},
    "scramble4": scramble(4),
    "scramble4-wide": {**scramble(4), "model_kwargs": WIDE},
    "scramble4-shift1": {**scramble(4), "block_translate": 1},
    "scramble16": scramble(16),
    "scramble16-shift2": {**scramble(16), "block_translate": 2},
}


def summary(out: Path) -> str:
    """The finished variants under ``out`` as a Markdown table: changes, validation accuracy."""
    rows = ["| variant | changes to the setting | validation accuracy % |", "|---|---|---|"]
    for path in sorted(out.glob("*/record.json")):
        variant = VARIANTS[path.parent.name]
        changes = {
            k: v for k, v in variant.items() if k not in ("recipe", "cipher", "model_kwargs")
        }
        changes |= variant.get("model_kwargs", {})  # bagnet's options, named as in the config
        described = ", ".join(
            f"{k} = {'/'.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in changes.items()
        )
        val_acc = json.loads(path.read_text())["history"][-1]["val_acc"]
        rows.append(f"| {path.parent.name} | {described or 'none'} | {100 * val_acc:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 .npz (needed to train)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", action="store_true", help="print the finished variants")
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    if args.summary:
        print(summary(args.out))
        return
    if args.data is None:
        parser.error("--data is needed to train")
    if unknown := sorted(set(args.variants) - set(VARIANTS)):
        parser.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
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
