"""Similarity of reconstructions to the plain images: SSIM and PSNR from scikit-image."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from keyless.errors import InputError

PSNR_CAP = 100.0  # dB, reported for identical images


def per_image(reconstructed: torch.Tensor, plain: torch.Tensor) -> tuple[list[float], list[float]]:
    """SSIM and PSNR of each pair of two (N, H, W, 3) uint8 batches.

    SSIM uses scikit-image's defaults for colour images (7x7 window, ``channel_axis=-1``,
    ``data_range=255``), so images must be at least 7x7.
    """
    if min(plain.shape[1:3]) < 7:
        h, w = plain.shape[1:3]
        raise InputError(f"SSIM needs images of at least 7x7 pixels (its window), got {h}x{w}")
    ssim, psnr = [], []
    for a, b in zip(reconstructed.cpu().numpy(), plain.cpu().numpy(), strict=True):
        ssim.append(float(structural_similarity(a, b, channel_axis=-1, data_range=255)))
        same = not (a != b).any()
        psnr.append(PSNR_CAP if same else float(peak_signal_noise_ratio(b, a, data_range=255)))
    return ssim, psnr


def similarity(reconstructed: torch.Tensor, plain: torch.Tensor) -> dict[str, float]:
    """Mean and standard deviation of SSIM and PSNR over (N, H, W, 3) uint8 image pairs."""
    ssim, psnr = per_image(reconstructed, plain)
    return {
        "ssim_mean": float(np.mean(ssim)),
        "ssim_std": float(np.std(ssim)),
        "psnr_mean": float(np.mean(psnr)),
        "psnr_std": float(np.std(psnr)),
    }
