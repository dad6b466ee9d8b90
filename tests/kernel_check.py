"""The shared kernel checker every cipher goes through (after torchvision's check_kernel)."""

from __future__ import annotations

import torch


def check_cipher(cipher, images: torch.Tensor, source=None) -> None:
    """Assert the invariants any cipher must keep on an (N, H, W, 3) uint8 batch."""
    n, h, w, _ = images.shape
    key = cipher.keygen(n, (h, w), source)
    before = images.clone()
    encrypted = cipher.encrypt(images, key)
    assert torch.equal(images, before), "encrypt modified its input"
    assert encrypted.dtype == torch.uint8 and encrypted.shape == images.shape
    assert encrypted.device == images.device
    assert torch.equal(cipher.decrypt(encrypted, key), images), "decrypt(encrypt(x)) != x"
    for i in range(n):  # batch == per-image results
        assert torch.equal(cipher.encrypt(images[i], key[i]), encrypted[i])
    empty = images[:0]
    assert cipher.encrypt(empty, cipher.keygen(0, (h, w))).shape == empty.shape
    if torch.cuda.is_available():
        on_gpu = cipher.encrypt(images.cuda(), key.to("cuda"))
        assert torch.equal(on_gpu.cpu(), encrypted), "CPU and CUDA disagree"
