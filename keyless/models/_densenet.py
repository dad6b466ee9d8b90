"""DenseNet-BC for CIFAR (Huang et al. 2017): depth 100, growth rate 12, compression 0.5.

Chosen over the DenseNet-121 CIFAR variant because it is the DenseNet the original paper tuned
for 32x32 inputs, and at 0.8 M parameters it is the one that trains in reasonable time on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, in_width: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm2d(in_width),
            nn.ReLU(),
            nn.Conv2d(in_width, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], 1)


class Transition(nn.Sequential):
    def __init__(self, in_width: int, width: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_width),
            nn.ReLU(),
            nn.Conv2d(in_width, width, 1, bias=False),
            nn.AvgPool2d(2),
        )


class DenseNetBC(nn.Module):
    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, depth: int = 100, growth: int = 12
    ) -> None:
        super().__init__()
        if not (10 <= depth <= 1000 and 1 <= growth <= 256):
            raise ValueError(f"DenseNet-BC takes depth 10 to 1000 and growth 1 to 256, got depth "
                             f"{depth} and growth {growth}")  # fmt: skip
        per_block = (depth - 4) // 6
        width = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(per_block):
                layers.append(Bottleneck(width, growth))
                width += growth
            if block < 2:
                layers.append(Transition(width, width // 2))
                width //= 2
        layers += [nn.BatchNorm2d(width), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
