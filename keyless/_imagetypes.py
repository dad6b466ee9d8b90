"""Conversions at the library's edges: numpy arrays and PIL images in, the same kind out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
from PIL import Image

from keyless._lazy import torch
from keyless.errors import InputError

ImageLike: TypeAlias = "torch.Tensor | np.ndarray | Image.Image"


def to_batch(images: ImageLike) -> tuple[torch.Tensor, Callable[[torch.Tensor], ImageLike]]:
    """An (N, H, W, 3) uint8 tensor view of ``images`` and a function giving back the input kind.

    Accepts (N, H, W, 3) or (H, W, 3) uint8 tensors or arrays, and RGB PIL images.
    """
    if isinstance(images, Image.Image):
        if images.mode != "RGB":
            raise InputError(f"expected an RGB PIL image, got mode {images.mode}")
        return torch.from_numpy(np.asarray(images).copy())[None], lambda t: Image.fromarray(
            t[0].cpu().numpy()
        )
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:  # before torch, which refuses object arrays in its own way
            _refuse(images.dtype, images.shape)
        # a copy for negative strides (img[..., ::-1], OpenCV's BGR to RGB), which torch refuses
        batch, restore = to_batch(torch.from_numpy(np.ascontiguousarray(images)))
        return batch, lambda t: restore(t).cpu().numpy()
    if not isinstance(images, torch.Tensor):
        raise InputError(f"expected a tensor, array or PIL image, got {type(images).__name__}")
    if images.dtype != torch.uint8 or images.dim() not in (3, 4) or images.shape[-1] != 3:
        _refuse(images.dtype, images.shape)
    if images.dim() == 3:
        return images[None], lambda t: t[0]
    return images, lambda t: t


def _refuse(dtype: object, shape: tuple[int, ...]) -> None:
    raise InputError(
        f"expected uint8 images of shape (N, H, W, 3) or (H, W, 3), got {dtype} {tuple(shape)}"
    )
