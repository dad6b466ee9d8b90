"""Similarity of reconstructions to the plain images: SSIM and PSNR from scikit-image."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def similarity(reconstructed: torch.Tensor, plain: torch.Tensor) -> dict[str, float]:
    """Mean and standard deviation of SSIM and PSNR over (N, H, W, 3) uint8 image pairs.

    SSIM uses scikit-image's defaults for colour images (7x7 window, ``channel_axis=-1``,
    ``data_range=255``); PSNR is capped at 100 dB for identical images.
    """
    ssim, psnr = [], []
    for a, b in zip(reconstructed.cpu().numpy(), plain.cpu().numpy(), strict=True):
        ssim.append(structural_similarity(a, b, channel_axis=-1, data_range=255))
        psnr.append(
            min(peak_signal_noise_ratio(b, a, data_range=255), 100.0) if (a != b).any() else 100.0
        )
    return {
        "ssim_mean": float(np.mean(ssim)), "ssim_std": float(np.std(ssim)),
        "psnr_mean": float(np.mean(psnr)), "psnr_std": float(np.std(psnr)),
    }  # fmt: skip
