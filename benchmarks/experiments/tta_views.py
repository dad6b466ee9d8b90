"""Validation accuracy of wider test-time augmentation for runs trained with a validation split.

Every view is an image and its mirror, shifted by (dy, dx) with reflection; ``level2`` is what
keyless evaluates (airbench's: half weight on the unshifted pair, half on the pairs shifted
(-1, -1) and (1, 1)); the others replace those two shifts by the 4 diagonal ones or the 8
neighbours (``uniform``: all 9 pairs the same weight). The validation images are the run's own
split of the CIFAR-10 training set, plain: with the key-invariant stem a plain image and every
fresh-key encryption of it give the same logits.

    python benchmarks/experiments/tta_views.py --data ../shared/data/cifar10/cifar10.npz \\
        RUN [RUN ...]
"""

from __future__ import annotations

import argparse

import torch

from keyless.augment import shift
from keyless.data import load_splits
from keyless.runs import load_run
from keyless.upload import hold_out, split_data

Shift = tuple[int, int]
SHIFTS: list[Shift] = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
DIAGONAL: list[Shift] = [(-1, -1), (1, 1), (-1, 1), (1, -1)]
NEIGHBOURS = [s for s in SHIFTS if s != (0, 0)]
COLUMNS = "mirror only | level2 | diagonal 4 | neighbours 8 | 9 uniform"


@torch.no_grad()
def pair_logits(model: torch.nn.Module, images: torch.Tensor) -> dict[Shift, torch.Tensor]:
    """Mean logits of each shifted image and its mirror, per shift, in bf16 batches of 500."""
    out: dict[Shift, list[torch.Tensor]] = {s: [] for s in SHIFTS}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for batch in images.split(500):
            for s in SHIFTS:
                moved = shift(batch, *s)
                out[s].append((model(moved).float() + model(moved.flip(2)).float()) / 2)
    return {s: torch.cat(v) for s, v in out.items()}


def accuracy(
    logits: dict[Shift, torch.Tensor], labels: torch.Tensor, views: list[Shift], centre: float
) -> str:
    """Accuracy (%) of ``centre`` times the unshifted pair plus the rest spread over ``views``."""
    mixed = centre * logits[(0, 0)] + (1 - centre) * sum(logits[s] for s in views) / len(views)
    return f"{(mixed.argmax(1) == labels).float().mean().item() * 100:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    splits = load_splits(args.data)
    variants = [([(0, 0)], 0.5), (DIAGONAL[:2], 0.5), (DIAGONAL, 0.5), (NEIGHBOURS, 0.5)]
    variants.append((NEIGHBOURS, 1 / 9))
    print(f"| run | {COLUMNS} |\n|---|" + "---|" * len(variants))
    for run in args.runs:
        model, checkpoint = load_run(run)
        train, _ = split_data(splits, checkpoint.config)  # the owner's images, as training cut them
        _, val = hold_out(len(train.images), checkpoint.config.val_size, checkpoint.seed)
        logits = pair_logits(model, train.images[val])
        row = [accuracy(logits, train.labels[val], v, c) for v, c in variants]
        print(f"| {run} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
