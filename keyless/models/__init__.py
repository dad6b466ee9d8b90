"""Classifiers behind one door: ``create_model(name, num_classes, stem=..., adapt=...)``.

Every model takes uint8 (N, H, W, 3) images: an input stem (plain scaling, the key-invariant
sorted fold, any cipher's declared key invariant, or 4-bit halves for LE), optionally an adaptation
network (ICIP's per-pixel one or Tanaka's block-wise one), then the registered backbone.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from keyless.cipher import Cipher, PixelCipher
from keyless.errors import ConfigError, InputError
from keyless.models._bagnet import BagNet
from keyless.models._densenet import DenseNetBC
from keyless.models._fastnet import FastNet
from keyless.models._inputs import (
    AdaptationNetwork,
    BlockAdaptationNetwork,
    FoldInput,
    GreyInput,
    InvariantInput,
    KeyInvariantInput,
    LearnedInput,
    NibbleInput,
    PlainInput,
    SplineInput,
)
from keyless.models._resnet import ImageNetResNet18, ResNet18
from keyless.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")
MODELS.register("fastnet")(FastNet)
MODELS.register("resnet18")(ResNet18)
MODELS.register("resnet18-imagenet")(ImageNetResNet18)  # photos: 224 x 224 and up
MODELS.register("densenet")(DenseNetBC)
MODELS.register("bagnet")(BagNet)  # a set of blocks: for keys that scramble block positions
STEMS = {
    "plain": PlainInput,
    "invariant": InvariantInput,
    "key-invariant": KeyInvariantInput,  # the cipher's declared invariant (pe-scramble, ELE...)
    "learned": LearnedInput,  # the sorted fold and a learned per-pixel correction
    "spline": SplineInput,  # the sorted fold's hinges (key-invariant)
    "nibbles": NibbleInput,
    "fold": FoldInput,  # diagnostics: NP's invariant (unsorted fold) and luma
    "grey": GreyInput,
}
ADAPTERS = ("none", "pixel", "block")


def _check_images(images: Any) -> None:
    """A one-line :class:`InputError` unless ``images`` is a (N, H, W, 3) uint8 tensor (dtype
    and shape only: no device sync)."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"expected uint8 images (N, H, W, 3); got {type(images).__name__}: "
                         "pass a torch tensor")  # fmt: skip
    if images.dtype != torch.uint8:
        hint = "pass the uint8 images, the model does its own scaling"
    elif images.ndim == 4 and images.shape[-1] == 3:
        return
    elif images.ndim == 4 and images.shape[1] == 3:
        hint = "put the channels last: images.permute(0, 2, 3, 1)"
    else:
        hint = "one (H, W, 3) image is images[None]"
    got = f"{str(images.dtype).removeprefix('torch.')} {tuple(images.shape)}"
    raise InputError(f"expected uint8 images (N, H, W, 3); got {got}: {hint}")


class Classifier(nn.Module):
    """stem -> [adaptation network] -> backbone; ``forward`` takes (N, H, W, 3) uint8 and says
    so in one line when handed anything else (e.g. a float (N, 3, H, W) batch)."""

    def __init__(self, stem: nn.Module, adapt: nn.Module | None, backbone: nn.Module) -> None:
        super().__init__()
        self.stem, self.adapt, self.backbone = stem, adapt, backbone

    def features_in(self, images: torch.Tensor) -> torch.Tensor:
        """What the backbone receives for ``images``."""
        _check_images(images)
        x = self.stem(images)
        return self.adapt(x) if self.adapt is not None else x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.features_in(images))

    @torch.no_grad()
    def check_input_size(self, size: tuple[int, int], name: str) -> None:
        """A one-line :class:`ConfigError` if images of ``size`` (H, W) are too small for this
        model (its pooling leaves nothing): one forward pass of a grey image, before training."""
        training = self.training
        self.eval()
        try:
            self(torch.full((1, *size, 3), 128, dtype=torch.uint8))
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ConfigError(f"{size[0]}x{size[1]} images are too small for {name} "
                              f"({reason})") from None  # fmt: skip
        finally:
            self.train(training)

    @property
    def inits_from_data(self) -> bool:
        """Whether :meth:`init_from_data` uses its images (fastnet's whitening does)."""
        return hasattr(self.backbone, "init_from_data")

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Data-dependent initialisation (fastnet's whitening) from a sample of training images."""
        if self.inits_from_data:
            self.backbone.init_from_data(self.features_in(images))


def create_model(
    name: str,
    num_classes: int = 10,
    stem: str = "plain",
    adapt: str | bool = "none",
    block_size: int = 4,
    cipher: Cipher | None = None,
    **kwargs: Any,
) -> Classifier:
    """Build a registered backbone behind the chosen stem.

    Args:
        name: ``fastnet``, ``resnet18``, ``resnet18-imagenet``, ``densenet`` or ``bagnet`` (see
            :func:`list_models`).
        num_classes: output logits.
        stem: ``plain``, ``invariant`` (key-invariant sorted fold), ``key-invariant`` (what
            ``cipher`` declares no key changes), ``learned`` and ``spline``
            (the sorted fold with a learned per-pixel correction, or its hinges), ``nibbles``
            (4-bit halves), or the diagnostics ``fold`` (unsorted fold) and ``grey`` (luma).
        adapt: ``none``; ``pixel``, the ICIP adaptation network (1x1 convs, 8 then 32 maps;
            ``True`` means this one); ``block``, Tanaka's block-wise network.
        block_size: the block side M for ``adapt="block"`` and the ``bagnet`` model (the
            cipher's).
        cipher: the cipher whose invariant the ``key-invariant`` stem computes (default PE).
        kwargs: backbone options; ``None`` values keep the defaults.
    """
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {sorted(STEMS)}, got {stem!r}")
    adapt = {True: "pixel", False: "none"}.get(adapt, adapt)  # type: ignore[arg-type]
    if adapt not in ADAPTERS:
        raise ValueError(f"adapt must be one of {ADAPTERS}, got {adapt!r}")
    stem_module = STEMS[stem](cipher or PixelCipher()) if stem == "key-invariant" else STEMS[stem]()
    adapter = {
        "none": lambda c: None,
        "pixel": AdaptationNetwork,
        "block": lambda c: BlockAdaptationNetwork(c, block_size),
    }[adapt](stem_module.out_channels)
    in_channels = adapter.out_channels if adapter else stem_module.out_channels
    if "block_size" in inspect.signature(MODELS.get(name)).parameters:
        kwargs = {"block_size": block_size, **kwargs}  # a backbone that reads blocks
    backbone = MODELS.create(name, num_classes=num_classes, in_channels=in_channels, **kwargs)
    return Classifier(stem_module, adapter, backbone).to(memory_format=torch.channels_last)


def list_models() -> list[str]:
    return MODELS.names()


__all__ = [
    "ADAPTERS",
    "MODELS",
    "AdaptationNetwork",
    "BagNet",
    "BlockAdaptationNetwork",
    "Classifier",
    "FoldInput",
    "GreyInput",
    "InvariantInput",
    "KeyInvariantInput",
    "LearnedInput",
    "NibbleInput",
    "PlainInput",
    "SplineInput",
    "create_model",
    "list_models",
]
