"""encrypt_dataset under a DataLoader with worker processes, forked (Linux's default) and spawned.

The images are large enough (over one 65,536-pixel chunk) that the parent's up-front check runs
the parallel numba kernel before the workers start: numba's OpenMP layer used to kill forked
workers that ran it again ("fork() called from a process already using GNU OpenMP").
"""

import pytest
import torch
from torch.utils.data import DataLoader

from keyless.cipher import PixelCipher
from keyless.data import encrypt_dataset
from keyless.invariant import sorted_fold
from keyless.keys import SeedSource

SIDE = 264  # 69,696 pixels: more than one parallel chunk


class Squares(torch.utils.data.Dataset):
    """Six random (SIDE, SIDE, 3) uint8 images labelled by index (module level: picklable)."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (6, SIDE, SIDE, 3), dtype=torch.uint8,
                                    generator=generator)  # fmt: skip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], index


def _batches(dataset, context):
    loader = DataLoader(dataset, batch_size=2, num_workers=2, multiprocessing_context=context,
                        timeout=120)  # fmt: skip
    return [(images, labels.tolist()) for images, labels in loader]


def _check_fixed_keys(context):
    plain = Squares()
    wrapped = encrypt_dataset(plain, source=SeedSource(7))
    batches = _batches(wrapped, context)
    assert sorted(i for _, labels in batches for i in labels) == list(range(len(plain)))
    cipher = PixelCipher()
    for images, labels in batches:
        for image, i in zip(images, labels, strict=True):
            assert torch.equal(image, wrapped[i][0])  # the key of index i, in any process
            key = cipher.keygen(1, (SIDE, SIDE), SeedSource(7), ids=[str(i)])
            assert torch.equal(cipher.decrypt(image, key), plain.images[i])
            assert not torch.equal(image, plain.images[i])


def test_fixed_keys_under_forked_workers():
    _check_fixed_keys(None)  # the default start method: fork on Linux


def test_fresh_keys_under_forked_workers_keep_what_every_key_keeps():
    plain = Squares()
    first, second = (_batches(encrypt_dataset(plain, fresh_keys=True), None) for _ in range(2))
    for (a, labels), (b, _) in zip(first, second, strict=True):
        assert torch.equal(sorted_fold(a), sorted_fold(plain.images[labels]))
        assert torch.equal(sorted_fold(b), sorted_fold(a)) and not torch.equal(a, b)


@pytest.mark.slow
def test_fixed_keys_under_spawned_workers():
    _check_fixed_keys("spawn")
