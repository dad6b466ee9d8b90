"""Can smoothness alone recover what the sorted fold hides? Error of fixed decoders on CIFAR-10.

A key-invariant stem could hand the network more than the sorted fold only if some fixed rule
could undo the fold from the fold itself. Each decoder here sees a pixel's sorted fold, so its 48
candidate plain pixels (each value or 255 minus it, the three in any order), and picks one in
raster order from already decoded neighbours. No decoder can resolve a per-channel inversion or a
channel permutation of the whole image, so every output is scored after the best of those 48
global maps: mean absolute error (0-255 scale) to the plain image. For reference, the same score
of the sorted fold as it is, of the unsorted fold (what NP inversion alone leaves), and of the
FR-advanced attack on one fresh-key encryption.

    python benchmarks/security/fold_decoding.py --data ../shared/data/cifar10/cifar10.npz \\
        --images 1000
"""

from __future__ import annotations

import argparse
import itertools

import torch

from keyless.attacks import candidate_decryptions, fr_advanced_attack
from keyless.cipher import PixelCipher
from keyless.data import load_splits
from keyless.invariant import fold, sorted_fold
from keyless.keys import SeedSource


def error_after_best_global_map(decoded: torch.Tensor, plain: torch.Tensor) -> float:
    """Mean over images of min over the 48 image-wide maps of mean |map(decoded) - plain|."""
    views = candidate_decryptions(decoded).float().movedim(-2, 1)  # (N, 48, H, W, 3)
    errors = (views - plain.float()[:, None]).abs().mean((2, 3, 4))
    return errors.min(1).values.mean().item()


def raster_decode(invariant: torch.Tensor, first: float, second: float) -> torch.Tensor:
    """Each pixel becomes its candidate with the least weighted L1 distance to predictions from
    decoded neighbours: ``first`` weighs the left and upper neighbours themselves, ``second``
    their linear extrapolations (two to the left, two above, and the plane through the left,
    upper and upper-left ones; the neighbours alone where no extrapolation exists yet). The first
    pixel is its sorted fold."""
    n, h, w, _ = invariant.shape
    candidates = candidate_decryptions(invariant).float()  # (N, H, W, 48, 3)
    out = torch.zeros(n, h, w, 3)
    out[:, 0, 0] = invariant[:, 0, 0].float()
    rows = torch.arange(n)
    for r, c in itertools.product(range(h), range(w)):
        if r == c == 0:
            continue
        left, up = out[:, r, c - 1], out[:, r - 1, c]
        predictions = [(first, left, c >= 1), (first, up, r >= 1)]
        predictions += [
            (second, 2 * left - out[:, r, c - 2], c >= 2),
            (second, 2 * up - out[:, r - 2, c], r >= 2),
            (second, left + up - out[:, r - 1, c - 1], r >= 1 and c >= 1),
        ]
        options = candidates[:, r, c]
        used = [(weight, guess) for weight, guess, present in predictions if present and weight]
        used = used or [(1, guess) for _, guess, present in predictions[:2] if present]
        cost = sum(weight * (options - guess[:, None]).abs().sum(-1) for weight, guess in used)
        out[:, r, c] = options[rows, cost.argmin(1)]
    return out.to(torch.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=1000, help="first N training images")
    args = parser.parse_args()
    plain = load_splits(args.data)["train"].images[: args.images]
    invariant = sorted_fold(plain)
    cipher = PixelCipher()
    encrypted = cipher.encrypt(plain, cipher.keygen(len(plain), plain.shape[1:3], SeedSource(0)))
    rows = {
        "sorted fold as it is": invariant,
        "unsorted fold (NP alone; not key-invariant)": fold(plain),
        "FR-advanced on a fresh-key encryption": fr_advanced_attack(encrypted),
    }
    for first, second in [(1, 0), (1, 1), (0.3, 1), (0, 1)]:
        rows[f"raster decoding, neighbours x{first}, extrapolations x{second}"] = raster_decode(
            invariant, first, second
        )
    print(f"{len(plain)} CIFAR-10 training images\n\n| input | MAE after the best global map |")
    print("|---|---|")
    for name, decoded in rows.items():
        print(f"| {name} | {error_after_best_global_map(decoded, plain):.2f} |")


if __name__ == "__main__":
    main()
