"""Learned ciphertext-only attacks: the attacker trains a network on images of their own.

ITN (inverse transformation network, Ito et al.): the attacker encrypts their own plain images
with random keys and fits encrypted -> plain with MSE. Two generators: the per-pixel stack of
1x1 convolutions (3-64-128-256-3) and a small U-Net that also sees neighbouring pixels.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from keyless.attacks._base import Attack, Scenario, register_attack
from keyless.cipher import Cipher, PixelCipher
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


class _Generated:
    """Reconstruction shared by the learned attacks: the trained generator ``net`` applied."""

    net: nn.Module

    @torch.no_grad()
    def reconstruct(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 ciphertexts -> the network's (N, H, W, 3) uint8 guesses."""
        self.net.eval()
        return torch.cat([_to_uint8(self.net(_to_float(b))) for b in ciphertexts.split(500)])


@dataclass
class ITNAttack(_Generated):
    """Inverse transformation network trained on the attacker's own images.

    Args:
        generator: ``pixel`` (1x1 stack) or ``unet``.
        cipher: the cipher the victim used (public: only the keys are secret).
        epochs, batch_size, lr: Adam training settings.
        budget_seconds: stop training when this much time has passed.
    """

    generator: str = "pixel"
    cipher: Cipher = field(default_factory=PixelCipher)
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
        n = len(attacker_images)
        start = time.perf_counter()
        self.net.train()
        for _ in tqdm(range(self.epochs), desc=f"itn-{self.generator}", leave=False):
            encrypted = self.cipher.encrypt_fresh(attacker_images, source)[0]
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


def discriminator() -> nn.Module:
    """A small convolutional critic: 3 strided convolutions, then one logit per image."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 3, 1, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1),
    )  # fmt: skip


@dataclass
class GANAttack(_Generated):
    """Unpaired GAN attack (Sirichotedumrong & Kiya): a generator (the 1x1 stack) maps victim
    ciphertexts to images a discriminator cannot tell from the attacker's own plain images.
    Adam 2e-4, beta1 0.5. ``losses`` records (discriminator, generator) loss per epoch."""

    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-4
    budget_seconds: float | None = None
    losses: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.net, self.critic = pixel_stack(), discriminator()

    def fit(self, attacker_images: torch.Tensor, victim_ciphertexts: torch.Tensor) -> GANAttack:
        """Train on the attacker's plain images and the victims' ciphertexts, never paired."""
        adam = {"lr": self.lr, "betas": (0.5, 0.999)}
        g_opt = torch.optim.Adam(self.net.parameters(), **adam)
        d_opt = torch.optim.Adam(self.critic.parameters(), **adam)
        bce = nn.BCEWithLogitsLoss()
        start = time.perf_counter()
        self.net.train()
        for _ in tqdm(range(self.epochs), desc="gan", leave=False):
            d_total = g_total = 0.0
            batches = torch.randperm(len(attacker_images)).split(self.batch_size)
            for index in batches:
                real = _to_float(attacker_images[index])
                pick = torch.randint(len(victim_ciphertexts), (len(index),))  # unpaired draw
                fake = self.net(_to_float(victim_ciphertexts[pick]))
                ones, zeros = torch.ones(len(index), 1), torch.zeros(len(index), 1)
                d_loss = bce(self.critic(real), ones) + bce(self.critic(fake.detach()), zeros)
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                g_loss = bce(self.critic(fake), ones)
                g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                g_opt.step()
                d_total, g_total = d_total + d_loss.item(), g_total + g_loss.item()
            self.losses.append((d_total / len(batches), g_total / len(batches)))
            if self.budget_seconds and time.perf_counter() - start > self.budget_seconds:
                break
        return self


@dataclass(frozen=True)
class _Learned(Attack):
    """A trained attack; ``epochs`` is a ceiling: training stops on the scenario's time budget."""

    epochs: int = 1000
    batch_size: int = 256


@register_attack("itn")
@dataclass(frozen=True)
class ITN(_Learned):
    """:class:`ITNAttack` with the per-pixel 1x1 stack; losses per epoch in ``extra``."""

    generator: ClassVar[str] = "pixel"
    lr: float = ITNAttack.lr

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        itn = ITNAttack(
            self.generator,
            scenario.cipher,
            self.epochs,
            self.batch_size,
            self.lr,
            budget_seconds=scenario.budget_seconds,
        ).fit(scenario.attacker_images, scenario.source)
        return itn.reconstruct(ciphertexts), {"losses": itn.losses}


@register_attack("itn-unet")
class ITNUNet(ITN):
    """:class:`ITNAttack` with the small U-Net."""

    generator = "unet"


@register_attack("gan")
@dataclass(frozen=True)
class GAN(_Learned):
    """:class:`GANAttack`; (discriminator, generator) losses per epoch in ``extra``."""

    lr: float = GANAttack.lr

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        gan = GANAttack(
            self.epochs, self.batch_size, self.lr, budget_seconds=scenario.budget_seconds
        ).fit(scenario.attacker_images, ciphertexts)
        return gan.reconstruct(ciphertexts), {"losses": gan.losses}
