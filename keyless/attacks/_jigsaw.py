"""The jigsaw attack on PE with a keyed block scramble (``pe-scramble``).

A fresh key leaves only the unordered set of the blocks' sorted folds. The attacker encrypts
their own images under fresh keys, knows where each block of the invariant belongs (from their
own plain image), and trains a network that sees the set (a shared block encoder, then a
transformer without position embeddings) to score every block at every position. Blocks get
positions one to one (greedy on the scores), which lays the sorted fold out again; a U-Net, as in
the invariant attack, then turns that fold into the picture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from keyless.attacks._base import Scenario, register_attack
from keyless.attacks._learned import ITNAttack, _Learned, _out_of_time
from keyless.cipher import ScrambledPixelCipher
from keyless.hardware import resolve_precision
from keyless.invariant import blocks_of, image_of, sort_rows, sorted_fold
from keyless.keys import KeySource


def greedy_assignment(scores: torch.Tensor) -> torch.Tensor:
    """One position per block, one block per position: (N, B, B) float scores of block ``r`` at
    position ``c`` -> (N, B) int64 positions, a permutation per image. Takes the highest remaining
    (block, position) pair B times; equals the row-wise argmax when that is already one to one."""
    n, b, _ = scores.shape
    scores = scores.float().clone()
    positions = torch.empty(n, b, dtype=torch.long, device=scores.device)
    images = torch.arange(n, device=scores.device)
    for _ in range(b):
        best = scores.flatten(1).argmax(1)
        block, position = best.div(b, rounding_mode="floor"), best % b
        positions[images, block] = position
        scores[images, block, :] = -torch.inf
        scores[images, :, position] = -torch.inf
    return positions


def place_blocks(
    rows: torch.Tensor, positions: torch.Tensor, height: int, width: int, size: int
) -> torch.Tensor:
    """(N, B, size * size * C) blocks and their (N, B) int64 positions (raster order) -> the
    (N, H, W, C) image with each block at its position."""
    placed = torch.empty_like(rows).scatter_(1, positions[..., None].expand_as(rows), rows)
    return image_of(placed, height, width, size)


def blocks_placed(placed: torch.Tensor, truth: torch.Tensor, size: int) -> float:
    """The fraction of the ``size`` x ``size`` blocks of (N, H, W, 3) ``placed`` equal to the
    block at the same position of (N, H, W, 3) ``truth`` (so of two identical blocks, either
    counts at either place)."""
    same = blocks_of(placed, size) == blocks_of(truth.to(placed.device), size)
    return same.all(-1).float().mean().item()


class BlockPlacer(nn.Module):
    """Scores each block of a set at each of ``blocks`` positions: a shared encoder (two 3x3
    convolutions, then a linear layer to ``width``) per ``size`` x ``size`` block, a transformer
    encoder over the set with no position embeddings (blocks attend to each other; the output
    for a block does not depend on the order they come in), a linear layer to position logits."""

    def __init__(self, size: int, blocks: int, width: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.size, maps = size, 16
        self.encode = nn.Sequential(
            nn.Conv2d(3, maps, 3, padding=1), nn.ReLU(),
            nn.Conv2d(maps, maps, 3, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(maps * size * size, width),
        )  # fmt: skip
        layer = nn.TransformerEncoderLayer(
            width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.mix = nn.TransformerEncoder(
            layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
        )
        self.head = nn.Linear(width, blocks)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, B, M * M * 3) uint8 sorted-fold blocks (0..127) -> (N, B, B) position logits."""
        n, b, _ = rows.shape
        x = rows.reshape(n * b, self.size, self.size, 3).permute(0, 3, 1, 2).float() / 127
        return self.head(self.mix(self.encode(x).reshape(n, b, -1)))


@dataclass
class JigsawPlacer:
    """Learns where the blocks of a ``pe-scramble`` key invariant belong (:meth:`fit` builds the
    :class:`BlockPlacer`, :meth:`place` uses it). Adam with the learning rate falling linearly
    to 0 over ``epochs`` or ``budget_seconds``, cross-entropy on the true positions, bf16
    autocast per ``precision`` (as :class:`ITNAttack`). ``losses``: mean loss per epoch."""

    cipher: ScrambledPixelCipher
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    width: int = 128
    layers: int = 2
    budget_seconds: float | None = None
    precision: str = "auto"
    losses: list[float] = field(default_factory=list)

    def examples(
        self, images: torch.Tensor, source: KeySource | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fresh encryptions of (N, H, W, 3) uint8 own images -> their ciphertexts, the (N, B,
        M * M * 3) invariant blocks and each block's true (N, B) position, read off the own
        plain image (noise included: the attacker holds the key) sorted the same way."""
        m = self.cipher.block_size
        ciphertexts, key = self.cipher.encrypt_fresh(images, source)
        rows = blocks_of(self.cipher.key_invariant(ciphertexts), m)
        plain = self.cipher.decrypt(ciphertexts, key)
        return ciphertexts, rows, sort_rows(blocks_of(sorted_fold(plain), m), bits=7)[1]

    def fit(self, images: torch.Tensor, source: KeySource | None = None) -> JigsawPlacer:
        """Train on (N, H, W, 3) uint8 own plain images, under fresh keys every epoch."""
        device, (h, w) = images.device, images.shape[1:3]
        m = self.cipher.block_size
        self.net = BlockPlacer(m, self.cipher.blocks(h, w), self.width, self.layers).to(device)
        self.autocast = torch.autocast(
            device.type,
            dtype=torch.bfloat16,
            enabled=resolve_precision(self.precision, device) == "bf16",
        )
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        start, steps = time.perf_counter(), -(-len(images) // self.batch_size)
        self.net.train()
        for epoch in tqdm(range(self.epochs), desc="jigsaw", leave=False):
            _, rows, truth = self.examples(images, source)
            total, done = 0.0, 0
            batches = torch.randperm(len(images), device=device).split(self.batch_size)
            for step, index in enumerate(batches):
                # lr falls linearly to 0 over the epochs or the budget, whichever ends first:
                # at a constant lr the placements fall apart again late in training
                spent = (epoch + step / steps) / self.epochs
                if self.budget_seconds is not None:
                    spent = max(spent, (time.perf_counter() - start) / self.budget_seconds)
                optimizer.param_groups[0]["lr"] = self.lr * max(0.0, 1 - spent)
                with self.autocast:
                    logits = self.net(rows[index]).float()
                loss = F.cross_entropy(logits.flatten(0, 1), truth[index].flatten())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, done = total + loss.item() * len(index), done + len(index)
                if _out_of_time(start, self.budget_seconds):
                    break
            self.losses.append(total / done)
            if _out_of_time(start, self.budget_seconds):
                break
        return self

    @torch.no_grad()
    def place(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 ciphertexts -> (N, H, W, 3) uint8 sorted folds, each block of the
        key invariant at the position the network gives it (one block per position)."""
        self.net.eval()
        h, w, m = *ciphertexts.shape[1:3], self.cipher.block_size
        out = []
        for batch in ciphertexts.split(500):
            rows = blocks_of(self.cipher.key_invariant(batch), m)
            with self.autocast:
                logits = self.net(rows).float()
            out.append(place_blocks(rows, greedy_assignment(logits.log_softmax(-1)), h, w, m))
        return torch.cat(out)


@dataclass
class _PlacedFoldUNet(ITNAttack):
    """:class:`ITNAttack` whose network sees the sorted fold as ``place`` lays it out."""

    place: Callable[[torch.Tensor], torch.Tensor] = field(kw_only=True)

    def inputs(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        return self.place(ciphertexts)


@register_attack("jigsaw")
@dataclass(frozen=True)
class Jigsaw(_Learned):
    """The jigsaw attack: :class:`JigsawPlacer` puts the invariant's blocks in place, then the
    invariant attack's U-Net (three levels, ``width`` maps at the first, L1) turns that fold
    into the picture. The U-Net trains on the placer's predicted layouts of the attacker's images
    under fresh keys (not the true layout), so it learns to live with misplaced blocks (a little
    fewer than on victims: the placer trained on most of those images).

    The time budget is split: ``placement_share`` for the placer, the rest for the U-Net;
    ``epochs`` caps each; Adam at ``lr`` for both. ``extra``: ``placed_folds`` (the victims'
    placed sorted folds, (N, H, W, 3) uint8, for the report to score), ``block_size``,
    ``own_blocks_placed`` (the fraction placed right on held-out own images, a tenth of them up
    to 1,000; ``None`` with fewer than 10) and both trainings' losses.
    """

    ciphers = ("pe-scramble",)
    epochs: int = 10
    lr: float = 1e-3
    width: int = 32
    placement_share: float = 0.5

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        cipher, images, budget = scenario.cipher, scenario.attacker_images, scenario.budget_seconds
        assert isinstance(cipher, ScrambledPixelCipher)  # refusal() let only pe-scramble in
        held = min(1000, len(images) // 10)
        placer = JigsawPlacer(
            cipher,
            self.epochs,
            self.batch_size,
            self.lr,
            budget_seconds=None if budget is None else budget * self.placement_share,
        ).fit(images[held:], scenario.source)
        own = None
        if held:
            held_out, rows, truth = placer.examples(images[:held], scenario.source)
            true_folds = place_blocks(rows, truth, *images.shape[1:3], cipher.block_size)
            own = blocks_placed(placer.place(held_out), true_folds, cipher.block_size)
        unet = _PlacedFoldUNet(
            generator="unet",
            cipher=cipher,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            budget_seconds=None if budget is None else budget * (1 - self.placement_share),
            loss="l1",
            width=self.width,
            levels=3,
            place=placer.place,
        ).fit(images, scenario.source)
        extra = {
            "placed_folds": placer.place(ciphertexts),
            "block_size": cipher.block_size,
            "own_blocks_placed": own,
            "placement_losses": placer.losses,
            "losses": unet.losses,
        }
        return unet.reconstruct(ciphertexts), extra
