"""bagnet: a classifier of an unordered set of image blocks (for keys that scramble blocks).

Under ``pe-scramble`` a fresh key moves every M x M block, so all a key-free model can use is the
set of the blocks' sorted folds (the ``key-invariant`` stem feeds them in a canonical order).
bagnet reads each block with one shared encoder (fastnet's conv groups: conv, max-pool while the
block is larger than 1 pixel, frozen-weight BatchNorm, GELU, conv) and pools over the blocks
(mean and max), so where a block sits never matters: a Deep Sets classifier. Optional
self-attention layers between the encoder and the pooling let blocks read each other; they have
no position embeddings, so they too ignore where a block sits.
"""

from __future__ import annotations

import torch
from torch import nn

from keyless.models._fastnet import MAX_WIDTH, ConvGroup


class BagNet(nn.Module):
    """Classifier of (N, C, H, W) inputs seen as a set of ``block_size`` x ``block_size`` blocks.

    Args:
        num_classes: output logits.
        in_channels: input feature maps (3 from the ``key-invariant`` stem).
        block_size: M, the cipher's block side; H and W must be multiples of it.
        widths: maps of each conv group (each halves the block while it is above 1 pixel).
        attention_layers: self-attention layers across the blocks before pooling (0: none).
        heads: attention heads per layer.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        block_size: int = 8,
        widths: tuple[int, ...] = (64, 128, 256),
        attention_layers: int = 0,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if not (1 <= len(widths) <= 8 and all(1 <= w <= MAX_WIDTH for w in widths)):
            raise ValueError(f"widths: bagnet takes 1 to 8, each 1 to {MAX_WIDTH}, got {widths}")
        if not 0 <= attention_layers <= 64:
            raise ValueError(f"attention_layers: 0 to 64, got {attention_layers}")
        if attention_layers and widths[-1] % heads:
            raise ValueError(f"widths: attention with {heads} heads needs a last width divisible "
                             f"by {heads}, got {widths[-1]}")  # fmt: skip
        self.block_size = block_size
        groups, width, side = [], in_channels, block_size
        for w in widths:
            groups.append(ConvGroup(width, w, pool=side > 1))
            width, side = w, max(side // 2, 1)
        self.encoder = nn.Sequential(*groups, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.mixer: nn.Module = nn.Identity()
        if attention_layers:
            layer = nn.TransformerEncoderLayer(
                width, heads, 2 * width, dropout=0.0, activation="gelu", batch_first=True,
                norm_first=True,
            )  # fmt: skip
            self.mixer = nn.TransformerEncoder(layer, attention_layers, enable_nested_tensor=False)
        self.head = nn.Linear(2 * width, num_classes, bias=False)
        self.logit_scale = 1 / 9
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                nn.init.dirac_(conv.weight[: conv.in_channels])  # fastnet's identity-like init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        m = self.block_size
        if h % m or w % m:
            raise ValueError(f"bagnet needs sides divisible by its block size {m}, got {h}x{w}")
        blocks = x.unfold(2, m, m).unfold(3, m, m)  # N, C, H/m, W/m, m, m
        blocks = blocks.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, m, m)
        features = self.encoder(blocks.contiguous(memory_format=torch.channels_last))
        features = self.mixer(features.view(n, -1, features.shape[-1]))  # N, blocks, width
        pooled = torch.cat([features.mean(1), features.amax(1)], 1)
        return self.head(pooled) * self.logit_scale
