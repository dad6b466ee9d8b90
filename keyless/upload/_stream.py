"""Reading a sharded upload while the caller works: worker processes read and check shards
ahead (:func:`read_ahead`), for training (:mod:`keyless.train`) and evaluation."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from keyless.data import ImageSet
from keyless.errors import KeylessError
from keyless.keys import KeySource
from keyless.upload._owner import derived_source
from keyless.upload._shards import ShardSet

Part = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # images, labels, indices in the set


class _ShardReader(Dataset):
    """Shards of a :class:`ShardSet` in a given order, each read and checked by a worker
    process: (images, labels, their indices in the set)."""

    def __init__(self, shards: ShardSet, order: list[int]) -> None:
        self.shards, self.order, self.offsets = shards, order, shards.offsets

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> Part | KeylessError:
        """The shard, or the one-line error that refused it (returned: a worker's raised
        error would reach the caller wrapped in its traceback)."""
        i = self.order[k]
        try:
            part = self.shards.read(i)
        except KeylessError as exc:
            return exc
        return part.images, part.labels, torch.arange(len(part)) + self.offsets[i]


def _start_method() -> str | None:
    """How reader processes start: from a small fork server where there is one (a reader forked
    from a training process would share, and be counted with, all of its memory)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    multiprocessing.set_forkserver_preload([__name__])  # torch loaded once, in the server
    return "forkserver"


def read_ahead(shards: ShardSet, order: list[int], workers: int) -> Iterator[Part]:
    """The shards at ``order``, in that order, read by ``workers`` processes (0: this one)
    while the caller works on the previous ones; a refused shard is raised here."""
    loader = DataLoader(_ShardReader(shards, order), batch_size=None, num_workers=workers,
                        prefetch_factor=2 if workers else None,
                        multiprocessing_context=_start_method() if workers else None)  # fmt: skip
    for part in loader:
        if isinstance(part, KeylessError):
            raise part
        yield part


def read_parts(shards: ShardSet, workers: int) -> Iterator[tuple[str, ImageSet]]:
    """Each shard of ``shards`` in order, as (its file name, its images): evaluation's stream."""
    for i, (images, labels, _) in enumerate(read_ahead(shards, list(range(len(shards.shards))),
                                                        workers)):  # fmt: skip
        yield shards.shards[i]["file"], ImageSet(images, labels, shards.classes)


def scored_parts(
    test: ImageSet | ShardSet, seed: int, readers: int = 1
) -> Iterator[tuple[ImageSet, KeySource]]:
    """A run's test set with its source of fresh test keys: whole (in memory), or shard by shard
    as ``readers`` processes read it, each shard with its own source."""
    if isinstance(test, ImageSet):
        yield test, derived_source(seed, "test")
        return
    for file, part in read_parts(test, readers):
        yield part, derived_source(seed, f"test/{file}")
