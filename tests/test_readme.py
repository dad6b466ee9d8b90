"""The README's Python quick start runs as written, on a tiny generated dataset."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from keyless.cipher import PixelCipher
from tests.synthetic import quadrant_images

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


class TorchvisionStyle(Dataset):
    """(image, int label) pairs, as torchvision's datasets yield them: Pillow images or arrays."""

    def __init__(self, n: int, seed: int, pillow: bool) -> None:
        data = quadrant_images(n, size=16, seed=seed)
        self.images, self.labels, self.pillow = data.images.numpy(), data.labels.tolist(), pillow

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Image.Image | np.ndarray, int]:
        image = self.images[index]
        return (Image.fromarray(image) if self.pillow else image), self.labels[index]


def quick_start() -> str:
    blocks = [b for b in PYTHON_BLOCK.findall(README.read_text()) if "encrypt_dataset(" in b]
    assert len(blocks) == 1, "the README should hold one Python quick start using encrypt_dataset"
    return blocks[0]


def test_the_readme_quick_start_trains_on_ciphertexts_and_classifies_a_fresh_key_one():
    torch.manual_seed(0)
    test_set = TorchvisionStyle(8, seed=1, pillow=False)
    namespace = {
        "my_dataset": TorchvisionStyle(32, seed=0, pillow=True),
        "my_test_dataset": test_set,
    }
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(quick_start(), str(README), "exec"), namespace)

    prediction, label = (int(v) for v in printed.getvalue().split())
    assert 0 <= prediction < 10 and label == test_set[0][1]
    assert torch.isfinite(namespace["loss"]) and namespace["optimizer"].state  # it took steps
    # The invariant stem: the plain image and its fresh-key ciphertext get the same logits.
    model, plain = namespace["model"], torch.from_numpy(test_set[0][0])[None]
    ciphertext, _ = PixelCipher().encrypt_fresh(plain)
    assert not torch.equal(ciphertext, plain)
    with torch.no_grad():
        assert torch.equal(model(plain), model(ciphertext))
