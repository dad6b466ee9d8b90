"""Learned ciphertext-only attacks: the attacker trains a network on images of their own.

ITN (inverse transformation network, Ito et al.): the attacker encrypts their own plain images
with random keys and fits encrypted -> plain with MSE. Two generators: the per-pixel stack of
1x1 convolutions (3-64-128-256-3) and a small U-Net that also sees neighbouring pixels. The
invariant attack fits a deeper U-Net to what every key leaves unchanged (PE's sorted fold) with
L1: fresh keys change the ciphertext but not its invariant, so they cannot hide it. GAN
(Sirichotedumrong & Kiya): unpaired, a critic tells reconstructions from plain images.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from keyless.attacks._base import Attack, Scenario, register_attack
from keyless.cipher import Cipher, PixelCipher
from keyless.hardware import resolve_precision
from keyless.keys import KeySource


def pixel_stack() -> nn.Module:
    """1x1 convolutions 3-64-128-256-3: a per-pixel function of the three ciphertext values."""
    layers: list[nn.Module] = []
    widths = (3, 64, 128, 256)
    for a, b in itertools.pairwise(widths):
        layers += [nn.Conv2d(a, b, 1), nn.BatchNorm2d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(256, 3, 1), nn.Sigmoid())


def _out_of_time(start: float, budget_seconds: float | None) -> bool:
    """Whether a training that began at ``start`` (perf_counter) has spent its budget."""
    return budget_seconds is not None and time.perf_counter() - start > budget_seconds


class UNet(nn.Module):
    """U-Net with ``levels`` resolutions of width, 2 width, 4 width, ... maps (two 3x3 conv-BN-ReLU
    blocks at each) and a sigmoid output in 0..1."""

    def __init__(self, width: int = 32, levels: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        if levels < 1 or width < 1:
            raise ValueError(f"a U-Net needs levels >= 1 and width >= 1, got {levels}, {width}")

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
                nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
            )  # fmt: skip

        widths = [width * 2**i for i in range(levels)]
        self.downs = nn.ModuleList(
            block(a, b) for a, b in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.ups = nn.ModuleList(block(widths[i] + widths[i + 1], widths[i])
                                 for i in reversed(range(levels - 1)))  # fmt: skip
        self.out = nn.Conv2d(width, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up in self.ups:
            skip = skips.pop()
            deep = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = up(torch.cat([skip, deep], 1))
        return torch.sigmoid(self.out(x))


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


def ssim_loss(x: torch.Tensor, y: torch.Tensor, window: int = 7) -> torch.Tensor:
    """1 - SSIM of (N, C, H, W) images in 0..1 with a uniform ``window`` (scikit-image's
    default window and constants), differentiable; the mean over positions and channels."""
    c1, c2 = 0.01**2, 0.03**2
    mean = functools.partial(F.avg_pool2d, kernel_size=window, stride=1)
    mx, my = mean(x), mean(y)
    vx, vy, cov = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return 1 - ssim.mean()


@dataclass
class ITNAttack(_Generated):
    """A reconstruction network trained on the attacker's own images under fresh keys.

    Args:
        generator: ``pixel`` (the 1x1 stack) or ``unet`` (``levels`` resolutions, ``width``
            maps at the first).
        cipher: the cipher the victim used (public: only the keys are secret).
        invariant: learn from the cipher's key invariant (:meth:`Cipher.key_invariant`, the
            sorted fold for PE) instead of the ciphertext, where the cipher has one.
        loss: ``mse`` (Ito et al.'s ITN) or ``l1``; ``ssim_weight`` adds that much 1 - SSIM.
        epochs, batch_size, lr: Adam training settings.
        budget_seconds: stop training when this much time has passed.
        precision: ``auto`` (bf16 autocast on GPUs and on CPUs with native bf16), ``bf16``
            or ``fp32``.
    """

    generator: str = "pixel"
    cipher: Cipher = field(default_factory=PixelCipher)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    budget_seconds: float | None = None
    invariant: bool = False
    loss: Literal["mse", "l1"] = "mse"
    ssim_weight: float = 0.0
    width: int = 32
    levels: int = 2
    precision: str = "auto"
    losses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        generators = {"pixel": pixel_stack, "unet": lambda: UNet(self.width, self.levels)}
        if self.generator not in generators:
            raise ValueError(
                f"generator must be one of {sorted(generators)}, got {self.generator!r}"
            )
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be 'mse' or 'l1', got {self.loss!r}")
        self.net = generators[self.generator]()

    def inputs(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """What the network sees: the key invariant (if asked for and known) or the ciphertext."""
        invariant = self.cipher.key_invariant(ciphertexts) if self.invariant else None
        return ciphertexts if invariant is None else invariant

    def objective(self, guess: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
        error = F.mse_loss(guess, plain) if self.loss == "mse" else F.l1_loss(guess, plain)
        return error + self.ssim_weight * ssim_loss(guess, plain) if self.ssim_weight else error

    def fit(self, attacker_images: torch.Tensor, source: KeySource | None = None) -> ITNAttack:
        """Train on (N, H, W, 3) uint8 plain images the attacker owns, encrypted with fresh keys
        every epoch. Records the mean training loss of each epoch in ``losses``."""
        device = attacker_images.device
        self.net.to(device)
        bf16 = resolve_precision(self.precision, device) == "bf16"
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        n = len(attacker_images)
        start = time.perf_counter()
        self.net.train()
        for _ in tqdm(range(self.epochs), desc=f"itn-{self.generator}", leave=False):
            seen = self.inputs(self.cipher.encrypt_fresh(attacker_images, source)[0])
            order, total, done = torch.randperm(n, device=device), 0.0, 0
            for index in order.split(self.batch_size):
                with autocast:
                    guess = self.net(_to_float(seen[index])).float()
                loss = self.objective(guess, _to_float(attacker_images[index]))
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
    def reconstruct(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 ciphertexts -> the network's (N, H, W, 3) uint8 guesses."""
        return super().reconstruct(self.inputs(ciphertexts))


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
        device = attacker_images.device
        self.net.to(device)
        self.critic.to(device)
        victims = victim_ciphertexts.to(device)
        start = time.perf_counter()
        self.net.train()
        for _ in tqdm(range(self.epochs), desc="gan", leave=False):
            d_total = g_total = 0.0
            batches = torch.randperm(len(attacker_images), device=device).split(self.batch_size)
            done = 0
            for index in batches:
                real = _to_float(attacker_images[index])
                pick = torch.randint(len(victims), (len(index),), device=device)  # unpaired
                fake = self.net(_to_float(victims[pick]))
                ones = torch.ones(len(index), 1, device=device)
                zeros = torch.zeros(len(index), 1, device=device)
                d_loss = bce(self.critic(real), ones) + bce(self.critic(fake.detach()), zeros)
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                g_loss = bce(self.critic(fake), ones)
                g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                g_opt.step()
                d_total, g_total = d_total + d_loss.item(), g_total + g_loss.item()
                done += 1
                if _out_of_time(start, self.budget_seconds):
                    break
            self.losses.append((d_total / done, g_total / done))
            if _out_of_time(start, self.budget_seconds):
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

    lr: float = ITNAttack.lr

    def network(self) -> dict[str, Any]:
        """The :class:`ITNAttack` options that make this attack what it is."""
        return {"generator": "pixel"}

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        itn = ITNAttack(
            cipher=scenario.cipher,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            budget_seconds=scenario.budget_seconds,
            **self.network(),
        ).fit(scenario.attacker_images, scenario.source)
        return itn.reconstruct(ciphertexts), {"losses": itn.losses}


@register_attack("itn-unet")
class ITNUNet(ITN):
    """:class:`ITNAttack` with the two-level U-Net (32 and 64 maps)."""

    def network(self) -> dict[str, Any]:
        return {"generator": "unet"}


@register_attack("invariant")
@dataclass(frozen=True)
class Invariant(ITN):
    """The invariant attack: a three-level U-Net (``width``, 2 and 4 ``width`` maps) learns the
    plain image from the cipher's key invariant (PE: the sorted fold, which no key changes, so
    fresh keys cannot hide it), L1 loss plus ``ssim_weight`` (1 - SSIM). For a cipher without a
    known invariant it learns from the ciphertext itself."""

    epochs: int = 10  # over the attacker's images, unless the time budget stops it sooner
    width: int = 32
    ssim_weight: float = 0.0

    def network(self) -> dict[str, Any]:
        return {"generator": "unet", "levels": 3, "width": self.width, "invariant": True,
                "loss": "l1", "ssim_weight": self.ssim_weight}  # fmt: skip


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
