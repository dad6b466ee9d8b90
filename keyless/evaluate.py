"""The evaluation protocol: accuracy on plain, fresh-key and common-key test sets, with and
without flip-and-translate test-time augmentation (reported separately).

TTA moves pixels, which is only valid where moving a ciphertext gives a ciphertext of the moved
image (``cipher.commutes_with_moves``: PE yes, the block-wise LE, ELE and EtC no). For the
others no TTA figure is reported, on any test set, so that every column compares like with like.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from tqdm import tqdm

from keyless.augment import shift
from keyless.cipher import Cipher, Key
from keyless.data import ImageSet
from keyless.keys import KeySource


def eval_batch_size(device: torch.device | str) -> int:
    """Images per forward pass: on a CPU small batches stay in cache (measured on 2 cores:
    DenseNet-BC-100 infers about 2.3x faster in batches of 32 than of 1000, fastnet and
    ResNet-18 1.2x); on an accelerator large batches fill it."""
    return 32 if torch.device(device).type == "cpu" else 1000


def predict(
    model: nn.Module,
    images: torch.Tensor,
    tta: bool = False,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
    precision: str = "bf16",
) -> torch.Tensor:
    """Logits (N, classes) as float32 for uint8 (N, H, W, 3) images.

    With ``tta``, airbench's level-2 augmentation: the mean over the image and its mirror, half
    weight on the unshifted pair and half on the pairs shifted one pixel up-left and down-right.
    ``batch_size`` defaults to :func:`eval_batch_size` for the device.
    """
    batch_size = batch_size or eval_batch_size(device)
    return _predict(model, images, tta, batch_size, device, precision)[-1]


@torch.no_grad()
def _predict(
    model: nn.Module,
    images: torch.Tensor,
    tta: bool,
    batch_size: int,
    device: torch.device | str,
    precision: str,
    desc: str | None = None,
) -> list[torch.Tensor]:
    """[logits] or, with ``tta``, [logits, TTA logits]: the unaugmented pass serves both.
    A progress bar labelled ``desc`` is shown when one is given."""
    model.eval()
    device = torch.device(device)
    outputs: list[list[torch.Tensor]] = []
    batches = images.split(batch_size)
    for batch in tqdm(batches, desc=desc, disable=desc is None, mininterval=2, leave=False):
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):

            def both(x: torch.Tensor) -> torch.Tensor:
                return (model(x).float() + model(x.flip(2)).float()) / 2

            logits = model(batch).float()
            views = [logits]
            if tta:
                shifted = (both(shift(batch, -1, -1)) + both(shift(batch, 1, 1))) / 2
                views.append(((logits + model(batch.flip(2)).float()) / 2 + shifted) / 2)
        outputs.append([v.cpu() for v in views])
    return [torch.cat(view) for view in zip(*outputs, strict=True)]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


def test_sets(
    test: ImageSet,
    cipher: Cipher,
    source: KeySource,
    common_key: Key | None,
    ciphertexts: bool = False,
) -> dict[str, torch.Tensor]:
    """The protocol's test images: plain; encrypted with fresh independent keys (drawn from
    ``source``, never the training keys); encrypted with the common key when there is one. For
    an upload's test split (``ciphertexts``): as the owner encrypted it, and re-keyed."""
    if ciphertexts:
        return {"upload": test.images, "upload_rekeyed": cipher.rekey(test.images, source)[0]}
    sets = {
        "plain": test.images,
        "fresh_key": cipher.encrypt_fresh(test.images, source)[0],
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
    progress: bool = False,
    ciphertexts: bool = False,
) -> dict[str, float]:
    """Accuracy on every test set of the protocol: ``{set}`` and, with ``tta`` where the cipher
    commutes with moving pixels, ``{set}_tta``; with ``progress``, a bar per test set.
    ``ciphertexts``: ``test`` is an upload's test split (see :func:`test_sets`)."""
    return evaluate_parts(model, [(test, source)], cipher, common_key, tta, device, precision,
                          progress, ciphertexts)  # fmt: skip


def evaluate_parts(
    model: nn.Module,
    parts: Iterable[tuple[ImageSet, KeySource]],
    cipher: Cipher,
    common_key: Key | None = None,
    tta: bool = True,
    device: torch.device | str = "cpu",
    precision: str = "bf16",
    progress: bool = False,
    ciphertexts: bool = False,
) -> dict[str, float]:
    """:func:`evaluate` over a test set given in parts, each with its own source of fresh keys
    (a test set streamed shard by shard): only the parts' logits are kept."""
    tta = tta and cipher.commutes_with_moves
    logits: dict[str, list[torch.Tensor]] = {}
    labels = []
    for test, source in parts:
        for name, images in test_sets(test, cipher, source, common_key, ciphertexts).items():
            desc = f"test {name}" if progress else None
            views = _predict(model, images, tta, eval_batch_size(device), device, precision, desc)
            for suffix, view in zip(("", "_tta"), views, strict=False):
                logits.setdefault(name + suffix, []).append(view)
        labels.append(test.labels)
    every = torch.cat(labels)
    return {name: accuracy(torch.cat(views), every) for name, views in logits.items()}
