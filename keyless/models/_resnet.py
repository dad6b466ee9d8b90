"""ResNet-18 in two kinds: the CIFAR one (3x3 stem, no max-pool), as in the ICIP 2019 paper's
lineage, and the ImageNet one (torchvision's ``resnet18``: a 7x7 stride-2 stem and a 3x3 stride-2
max-pool, so 224 x 224 photos reach the blocks at 56 x 56)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_width: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_width, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_width != width:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_width, width, 1, stride, bias=False), nn.BatchNorm2d(width)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


MAX_WIDTH = 512  # the first stage's channels; the last has 8x, and a 3x3 conv of 4096 is 0.6 GB


class ResNet18(nn.Module):
    """``width``: the first stage's channels (the later stages' double at each); 64 is ResNet-18."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if not 1 <= width <= MAX_WIDTH:
            raise ValueError(f"width: a ResNet's first stage takes 1 to {MAX_WIDTH}, got {width}")
        self.stem = self.make_stem(in_channels, width)
        blocks, previous = [], width
        for stage in range(4):
            for i in range(2):
                blocks.append(BasicBlock(previous, width << stage, 2 if stage and not i else 1))
                previous = width << stage
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(previous, num_classes)

    @staticmethod
    def make_stem(in_channels: int, width: int) -> nn.Sequential:
        """A 3x3 convolution at full resolution (32 x 32 images keep their detail)."""
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ImageNetResNet18(ResNet18):
    """ResNet-18 of the ImageNet kind (torchvision's ``resnet18``): the CIFAR kind's blocks behind
    a stem that divides each side by 4, so the blocks' cost at 224 x 224 is theirs at 56 x 56."""

    @staticmethod
    def make_stem(in_channels: int, width: int) -> nn.Sequential:
        """A 7x7 stride-2 convolution, then a 3x3 stride-2 max-pool."""
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
