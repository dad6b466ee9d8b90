"""fastnet: a CPU-friendly CIFAR network in the spirit of Keller Jordan's airbench94.

A frozen 2x2 (``whiten_kernel``) patch-whitening convolution (initialised from training data;
24 maps whatever the input width, so an adaptation network in front does not widen the whole
net), three conv groups
(conv, max-pool, BN, GELU, conv, BN, GELU) and a max-pool head. BatchNorm weights are frozen
at 1 and only the biases learn, as in airbench (BatchNorm momentum 0.4 everywhere: airbench94's;
airbench96 moved to torch's 0.1 in 2024). ``residual=True`` gives airbench96's groups: a
third conv, and a residual connection over the last two (``residual_depth=1``: no third conv, a
skip over the second).
"""

from __future__ import annotations

import torch
from torch import nn


def _batch_norm(width: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(width, momentum=0.4, eps=1e-12)
    bn.weight.requires_grad = False
    return bn


def _conv(in_width: int, width: int) -> nn.Conv2d:
    return nn.Conv2d(in_width, width, 3, padding=1, bias=False)


class ConvGroup(nn.Sequential):
    """airbench94's group: conv, max-pool, BN, GELU, conv, BN, GELU (``pool=False``: no pool,
    for inputs already down to one pixel)."""

    def __init__(self, in_width: int, width: int, pool: bool = True) -> None:
        super().__init__(
            _conv(in_width, width),
            nn.MaxPool2d(2) if pool else nn.Identity(),
            _batch_norm(width),
            nn.GELU(),
            _conv(width, width),
            _batch_norm(width),
            nn.GELU(),
        )


class ResidualGroup(nn.Module):
    """airbench96's group: conv, max-pool, BN, GELU, then ``depth`` conv-BN layers (GELU between
    them) added back onto their input before the last GELU (depth without harder optimisation).
    airbench96 has ``depth=2``; ``depth=1`` is airbench94's group with a skip over its second
    conv."""

    def __init__(self, in_width: int, width: int, depth: int = 2) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"residual_depth must be at least 1, got {depth}")
        self.down = nn.Sequential(
            _conv(in_width, width), nn.MaxPool2d(2), _batch_norm(width), nn.GELU()
        )
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.GELU()] if layers else []
            layers += [_conv(width, width), _batch_norm(width)]
        self.inner = nn.Sequential(*layers)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return self.act(x + self.inner(x))


MAX_WIDTH = 4096  # maps per block (airbench96: 512); wider convs take gigabytes each


class FastNet(nn.Module):
    """airbench94-style classifier for 32x32 inputs with ``in_channels`` feature maps."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: tuple[int, ...] = (64, 256, 256),
        whiten_width: int | None = None,
        residual: bool = False,
        residual_depth: int = 2,
        whiten_kernel: int = 2,
    ) -> None:
        super().__init__()
        # 24 maps whatever the input width (1 input channel has only 4 patch directions: 8 maps)
        if len(widths) != 3 or not all(1 <= w <= MAX_WIDTH for w in widths):
            raise ValueError(f"widths: fastnet takes three, each 1 to {MAX_WIDTH}, got {widths}")
        if not 1 <= whiten_kernel <= 8:
            raise ValueError(f"whiten_kernel: 1 to 8 pixels, got {whiten_kernel}")
        directions = in_channels * whiten_kernel**2
        whiten_width = whiten_width or min(24, 2 * directions)
        if whiten_width % 2 or not 0 < whiten_width <= 2 * directions:
            raise ValueError(
                f"whiten_width must be even and at most {2 * directions}, got {whiten_width}"
            )
        self.whiten = nn.Conv2d(in_channels, whiten_width, whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        nn.init.zeros_(self.whiten.bias)  # airbench: the whitening bias starts at zero
        groups, width = [], whiten_width
        for w in widths:
            groups.append(
                ResidualGroup(width, w, residual_depth) if residual else ConvGroup(width, w)
            )
            width = w
        self.body = nn.Sequential(nn.GELU(), *groups, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes, bias=False)
        self.logit_scale = 1 / 9
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d) and conv is not self.whiten:
                # identity-like init of the first in_width filters (airbench's dirac init)
                nn.init.dirac_(conv.weight[: conv.in_channels])

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, eps: float = 5e-4) -> None:
        """Whitening filters: leading eigenvectors of the uncentred k x k patch covariance of
        ``x`` (airbench's: the mean direction stays in, as one of the kept filters)."""
        c, k = x.shape[1], self.whiten.kernel_size[0]
        per_image = (x.shape[2] - k + 1) * (x.shape[3] - k + 1)
        cov = x.new_zeros(c * k * k, c * k * k, dtype=torch.float64)
        # about 5 M patches at a time (one chunk for 5,000 CIFAR-10 images; GBs on larger ones)
        for batch in x.split(max(1, 5_000_000 // per_image)):
            patches = batch.double().unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
            patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
            cov += patches.T @ patches
        cov /= len(x) * per_image
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        keep = self.whiten.out_channels // 2  # eigh sorts ascending: keep the largest
        eigenvalues, eigenvectors = eigenvalues[-keep:], eigenvectors[:, -keep:]
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).view(-1, c, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.whiten(x))) * self.logit_scale
