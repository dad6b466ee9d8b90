"""Tune the independent-key recipe on a validation split, never on the test set.

Each variant is the fast recipe with a few changes, trained with independent keys on the
CIFAR-10 training set less a 5,000-image validation split; compare ``val_acc`` of the last
epoch in each record (``history``), then confirm the chosen one on the test set once.

    python benchmarks/experiments/tune_invariant.py --data ../shared/data/cifar10/cifar10.npz \\
        --out runs/tune [--full-width] [--seed N] [VARIANT ...]

Finished variants (record.json present) are skipped, interrupted ones resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from keyless.train import recipe, train
from keyless.train.recipes import airbench_sgd

CPU_WIDTH: dict[str, Any] = {"widths": [32, 64, 128]}
BASE: dict[str, Any] = {"keys": "independent", "stem": "invariant", "val_size": 5000, "seed": 0}


def batch(
    size: int, lr: float = 11.5, decay: float = 0.0153, momentum: float = 0.85
) -> dict[str, Any]:
    """airbench's per-example lr and decay (or ``lr`` and ``decay`` in its units) at another
    batch size (more, smaller steps), with Nesterov ``momentum``."""
    return {"batch_size": size, "momentum": momentum, **airbench_sgd(lr, decay, momentum, size)}


def muon(size: int, lr: float = 0.24) -> dict[str, Any]:
    """airbench94_muon: Muon on the conv filters, linear decay from the first step to zero."""
    return {**batch(size), "optimizer": "muon", "muon_lr": lr, "warmup_fraction": 0.0,
            "lr_end": 0.0}  # fmt: skip


VARIANTS: dict[str, dict[str, Any]] = {
    "invariant": {},
    "batch-512": batch(512),
    "batch-256": batch(256),
    "batch-128": batch(128),
    "batch-256-lr-1.5": batch(256, lr=11.5 * 1.5),
    "batch-256-smoothing-0.1": {**batch(256), "label_smoothing": 0.1},
    "batch-256-lookahead-20": {**batch(256), "lookahead_every": 20},
    "batch-256-lr-0.67": batch(256, lr=11.5 / 1.5),
    "batch-256-decay-2": batch(256, decay=0.0153 * 2),
    "batch-256-decay-0.5": batch(256, decay=0.0153 / 2),
    "batch-256-smoothing-0.3": {**batch(256), "label_smoothing": 0.3},
    "batch-256-translate-3": {**batch(256), "translate": 3},
    "batch-256-translate-1": {**batch(256), "translate": 1},
    "batch-256-contrast-0.25": {**batch(256), "contrast": 0.25},
    "batch-256-learned-stem": {**batch(256), "stem": "learned"},
    "batch-256-lr-end-0": {**batch(256), "lr_end": 0.0},
    "batch-256-whiten-bias-10": {**batch(256), "whiten_bias_epochs": 10.0},
    "batch-256-lookahead-2": {**batch(256), "lookahead_every": 2},
    "batch-256-momentum-0.9": batch(256, momentum=0.9),
    "batch-256-warmup-0.1": {**batch(256), "warmup_fraction": 0.1},
    "batch-256-cutout-6": {**batch(256), "cutout": 6},
    "batch-256-cutout-8": {**batch(256), "cutout": 8},
    "batch-256-cutout-12": {**batch(256), "cutout": 12},
    "batch-256-whiten-3x3-54": {
        **batch(256),
        "model_kwargs": {"whiten_kernel": 3, "whiten_width": 54},
    },
    "batch-256-skip": {**batch(256), "model_kwargs": {"residual": True, "residual_depth": 1}},
    "smoothing-0.1": {"label_smoothing": 0.1},
    "batch-512-smoothing-0.1": {**batch(512), "label_smoothing": 0.1},
    "spline-w48": {"stem": "spline", "model_kwargs": {**CPU_WIDTH, "whiten_width": 48}},
    "muon-b1000": {**muon(1000), "lookahead": False},
    "muon-b1000-lookahead": muon(1000),
    "muon-b500": {**muon(500, lr=0.17), "lookahead": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--full-width", action="store_true", help="fastnet 64/256/256")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    for name in args.variants:
        out = args.out / name
        if (out / "record.json").exists():
            continue
        width = {} if args.full_width else CPU_WIDTH
        changes = {"model_kwargs": width, **BASE, "seed": args.seed, "epochs": args.epochs,
                   **VARIANTS[name]}  # fmt: skip
        config = recipe("fast", **changes)
        record = train(config, args.data, out, resume=True, command=" ".join(sys.argv))
        print(name, "val_acc", record["history"][-1]["val_acc"], flush=True)


if __name__ == "__main__":
    main()
