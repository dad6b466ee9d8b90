"""Learned ciphertext-only attacks: the attacker trains a network on images of their own.

ITN (inverse transformation network, Ito et al.): the attacker encrypts their own plain images
with random keys and fits encrypted -> plain with MSE. Two generators: the per-pixel stack of
1x1 convolutions (3-64-128-256-3) and a small U-Net that also sees neighbouring pixels.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from keyless.cipher import PixelCipher
from keyless.keys import KeySource


def pixel_stack() -> nn.Module:
    """1x1 convolutions 3-64-128-256-3: a per-pixel function of the three ciphertext values."""
    layers: list[nn.Module] = []
    widths = (3, 64, 128, 256)
    for a, b in itertools.pairwise(widths):
        layers += [nn.Conv2d(a, b, 1), nn.BatchNorm2d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(256, 3, 1), nn.Sigmoid())


class SmallUNet(nn.Module):
    """Two-level U-Net (32 and 64 maps) with a sigmoid output in 0..1."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
                nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
            )  # fmt: skip

        self.down, self.bottom = block(3, width), block(width, 2 * width)
        self.up = block(3 * width, width)
        self.out = nn.Conv2d(width, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)
        deep = self.bottom(F.max_pool2d(skip, 2))
        deep = F.interpolate(deep, size=skip.shape[-2:], mode="nearest")
        return torch.sigmoid(self.out(self.up(torch.cat([skip, deep], 1))))


GENERATORS = {"pixel": pixel_stack, "unet": SmallUNet}


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.permute(0, 3, 1, 2).float() / 255


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@dataclass
class ITNAttack:
    """Inverse transformation network trained on the attacker's own images.

    Args:
        generator: ``pixel`` (1x1 stack) or ``unet``.
        cipher: the cipher the victim used (public: only the keys are secret).
        epochs, batch_size, lr: Adam training settings.
        budget_seconds: stop training when this much time has passed.
    """

    generator: str = "pixel"
    cipher: PixelCipher = field(default_factory=PixelCipher)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    budget_seconds: float | None = None
    losses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(
                f"generator must be one of {sorted(GENERATORS)}, got {self.generator!r}"
            )
        self.net = GENERATORS[self.generator]()

    def fit(self, attacker_images: torch.Tensor, source: KeySource | None = None) -> ITNAttack:
        """Train on (N, H, W, 3) uint8 plain images the attacker owns, encrypted with fresh keys
        every epoch. Records the mean training loss of each epoch in ``losses``."""
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        n, h, w, _ = attacker_images.shape
        start = time.perf_counter()
        self.net.train()
        for _ in tqdm(range(self.epochs), desc=f"itn-{self.generator}", leave=False):
            encrypted = self.cipher.encrypt(attacker_images, self.cipher.keygen(n, (h, w), source))
            order, total = torch.randperm(n), 0.0
            for index in order.split(self.batch_size):
                loss = F.mse_loss(
                    self.net(_to_float(encrypted[index])), _to_float(attacker_images[index])
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
            self.losses.append(total / n)
            if self.budget_seconds and time.perf_counter() - start > self.budget_seconds:
                break
        return self

    @torch.no_grad()
    def reconstruct(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 ciphertexts -> the network's (N, H, W, 3) uint8 guesses."""
        self.net.eval()
        return torch.cat([_to_uint8(self.net(_to_float(b))) for b in ciphertexts.split(500)])
