"""The model's door: uint8 (N, H, W, 3) images in, normalised float (N, C, H, W) out.

``PlainInput`` scales values; ``InvariantInput`` is the key-invariant stem: per value
min(p, 255 - p), then each pixel's three values sorted, so a plain image and every PE encryption
of it give bit-identical features; ``LearnedInput`` adds a learned per-pixel correction to it and
``SplineInput`` feeds piecewise-linear hinges of the same sorted fold; ``FoldInput`` (the fold
unsorted) and ``GreyInput`` (luma) are diagnostics of where the sorted fold's cost comes from;
``NibbleInput`` splits every value into its 4-bit halves (the units Tanaka's LE shuffles).
``AdaptationNetwork`` is the ICIP 2019 block of two 1x1 convolutions (8 then 32 maps) placed in
front of the classifier; ``BlockAdaptationNetwork`` is Tanaka's block-wise one, which sees a
whole M x M block at once and so can learn to undo a permutation inside blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from keyless.cipher import Cipher
from keyless.invariant import fold, sorted_fold


class PlainInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float, values mapped from 0..255 to about -2..2."""

    out_channels = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        return ((x - 127.5) / 64.0).contiguous(memory_format=torch.channels_last)


class InvariantInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float of the sorted fold, mapped to about -2..2."""

    out_channels = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = sorted_fold(images).permute(0, 3, 1, 2).float()
        return ((x - 63.75) / 32.0).contiguous(memory_format=torch.channels_last)


class KeyInvariantInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float: what no key of ``cipher`` changes (its
    ``key_invariant``: for ``pe-scramble`` the blocks' sorted folds in a canonical order, for ELE
    and EtC their blocks as an unordered set), mapped to about -2..2. A plain image and every
    encryption of it give bit-identical features, whatever the cipher."""

    out_channels = 3

    def __init__(self, cipher: Cipher) -> None:
        super().__init__()
        if cipher.key_invariant(torch.zeros(0, 32, 32, 3, dtype=torch.uint8)) is None:
            raise ValueError(f"cipher {cipher.name!r} declares no key invariant")
        self.cipher = cipher

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.cipher.key_invariant(images).permute(0, 3, 1, 2).float()
        return ((x - 127.5) / 64.0).contiguous(memory_format=torch.channels_last)


class LearnedInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 3, H, W): the sorted fold plus a learned per-pixel correction
    (a 1x1 network, 3 -> ``hidden`` -> 3, its last layer zero-initialised): still a function of
    the sorted fold alone, and at initialisation exactly ``InvariantInput``'s output, so the
    whitening layer is computed on the sorted fold."""

    out_channels = 3

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.fold = InvariantInput()
        self.correction = nn.Sequential(nn.Conv2d(3, hidden, 1), nn.GELU(), nn.Conv2d(hidden, 3, 1))
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.fold(images)
        return x + self.correction(x)


class SplineInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 12, H, W) float: each sorted-fold value v expanded into the
    hinges max(v - t, 0) for t in 0, 32, 64, 96, each centred and mapped to about -2..2.

    Still a function of the sorted fold alone (key-invariant), but the frozen linear whitening
    layer can now combine any piecewise-linear response to each value, not only the value: the
    fold bends every colour at 127.5, and a linear first layer cannot unbend it.
    """

    knots = (0, 32, 64, 96)
    out_channels = 3 * len(knots)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        v = sorted_fold(images).permute(0, 3, 1, 2).float()
        knots = torch.tensor(self.knots, device=v.device, dtype=v.dtype)[:, None, None, None]
        hinges = (v[:, None] - knots).clamp_min(0)  # N, knots, 3, H, W
        x = (hinges - (127.5 - knots) / 2) / (32.0 * (127.5 - knots) / 127.5)
        return x.flatten(1, 2).contiguous(memory_format=torch.channels_last)


class FoldInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float of min(p, 255 - p) per value, unsorted: what NP
    alone leaves (a diagnostic of where the sorted fold's cost comes from), about -2..2."""

    out_channels = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = fold(images).permute(0, 3, 1, 2).float()
        return ((x - 63.75) / 32.0).contiguous(memory_format=torch.channels_last)


class GreyInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 1, H, W) float luma (ITU-R 601), about -2..2: a diagnostic
    of what colour is worth (not key-invariant)."""

    out_channels = 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        luma = images.float() @ torch.tensor([0.299, 0.587, 0.114], device=images.device)
        return ((luma[:, None] - 127.5) / 64.0).contiguous(memory_format=torch.channels_last)


class NibbleInput(nn.Module):
    """(N, H, W, 3) uint8 -> (N, 6, H, W) float: upper and lower 4-bit halves, about -2..2."""

    out_channels = 6

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.stack([images >> 4, images & 15], -1).flatten(3).permute(0, 3, 1, 2).float()
        return ((x - 7.5) / 4.0).contiguous(memory_format=torch.channels_last)


class AdaptationNetwork(nn.Module):
    """ICIP 2019 adaptation network: 1x1 conv to 8 maps, then to 32, each with BN and ReLU."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, int] = (8, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += [
                nn.Conv2d(in_channels, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            in_channels = width
        self.layers = nn.Sequential(*layers)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class BlockAdaptationNetwork(nn.Module):
    """Tanaka's block-wise adaptation network: each M x M block becomes one position with
    C * M^2 channels (space to depth), a 1x1 convolution maps them to the block's 3 M^2 values
    (with BN), and depth to space gives a 3-channel full-size image back.

    One affine map per block is exactly what undoes LE's shared in-block shuffle and nibble
    inversion; it starts as the plain decoding (upper half * 16 + lower half, or the identity
    for 3-channel inputs), so before training a plain image comes out as itself, rescaled.
    """

    def __init__(self, in_channels: int = 6, block_size: int = 4) -> None:
        super().__init__()
        if in_channels not in (3, 6):
            raise ValueError(f"block adaptation takes 3 values or 6 nibbles, got {in_channels}")
        area = block_size**2
        conv = nn.Conv2d(in_channels * area, 3 * area, 1, bias=False)
        with torch.no_grad():  # the plain decoding; channel = component * M^2 + position
            conv.weight.zero_()
            for c in range(3):
                for pos in range(area):
                    if in_channels == 6:
                        conv.weight[c * area + pos, 2 * c * area + pos] = 16 / 17
                        conv.weight[c * area + pos, (2 * c + 1) * area + pos] = 1 / 17
                    else:
                        conv.weight[c * area + pos, c * area + pos] = 1.0
        self.layers = nn.Sequential(
            nn.PixelUnshuffle(block_size),
            conv,
            nn.BatchNorm2d(3 * area),
            nn.PixelShuffle(block_size),
        )
        self.out_channels = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
