"""The evaluation protocol: accuracy on plain, fresh-key and common-key test sets, with and
without flip-and-translate test-time augmentation (reported separately)."""

from __future__ import annotations

import torch
from torch import nn

from keyless.augment import shift
from keyless.cipher import Cipher, Key
from keyless.data import ImageSet
from keyless.keys import KeySource


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    tta: bool = False,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
    precision: str = "bf16",
) -> torch.Tensor:
    """Logits (N, classes) as float32 for uint8 (N, H, W, 3) images.

    With ``tta``, airbench's level-2 augmentation: the mean over the image and its mirror, half
    weight on the unshifted pair and half on the pairs shifted one pixel up-left and down-right.
    """
    model.eval()
    device = torch.device(device)
    outputs = []
    for batch in images.split(batch_size):
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):

            def both(x: torch.Tensor) -> torch.Tensor:
                return (model(x).float() + model(x.flip(2)).float()) / 2

            if tta:
                shifted = (both(shift(batch, -1, -1)) + both(shift(batch, 1, 1))) / 2
                logits = (both(batch) + shifted) / 2
            else:
                logits = model(batch).float()
        outputs.append(logits.cpu())
    return torch.cat(outputs)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


def test_sets(
    test: ImageSet, cipher: Cipher, source: KeySource, common_key: Key | None
) -> dict[str, torch.Tensor]:
    """The protocol's test images: plain; encrypted with fresh independent keys (drawn from
    ``source``, never the training keys); encrypted with the common key when there is one."""
    n, h, w, _ = test.images.shape
    sets = {
        "plain": test.images,
        "fresh_key": cipher.encrypt(test.images, cipher.keygen(n, (h, w), source)),
    }
    if common_key is not None:
        sets["common_key"] = cipher.encrypt(test.images, common_key)
    return sets


def evaluate(
    model: nn.Module,
    test: ImageSet,
    cipher: Cipher,
    source: KeySource,
    common_key: Key | None = None,
    tta: bool = True,
    device: torch.device | str = "cpu",
    precision: str = "bf16",
) -> dict[str, float]:
    """Accuracy on every test set of the protocol: ``{set}`` and, with ``tta``, ``{set}_tta``."""
    results = {}
    for name, images in test_sets(test, cipher, source, common_key).items():
        for use_tta in (False, True) if tta else (False,):
            logits = predict(model, images, use_tta, device=device, precision=precision)
            results[name + ("_tta" if use_tta else "")] = accuracy(logits, test.labels)
    return results
