"""Where a run's training batches come from: images held in memory (:class:`MemoryFeed`), or
shards streamed from disk (:class:`ShardFeed`) for uploads larger than memory.

Either feed gives, per step, this process's uint8 images, their labels and their indices in the
training set (which pick each image's mirroring); augmentation then runs batched on the device,
the same for both. How a streamed epoch is shuffled: the shard order is drawn afresh every epoch
(the same on every process); under ``torchrun`` each process takes every ``world``-th shard of
it, so processes read disjoint shards; consecutive shards are pooled until they hold at least
``buffer`` images, and the pool (with what the last one left over) is shuffled and cut into
batches. Each image is seen at most once an epoch (what the last pool leaves, less than a batch,
waits for the next epoch, as do the shards a deal among processes leaves over); peak memory is
about one pool (batches are gathered from the shards' own tensors) plus the shards being read
ahead, whatever the upload's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from keyless.errors import ConfigError
from keyless.upload import ShardSet, read_ahead

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # images, labels, training-set indices
Rekey = Callable[[torch.Tensor, str], torch.Tensor]  # (ciphertexts, purpose) -> re-keyed


@dataclass
class MemoryFeed:
    """Batches from images in memory (on the device): a fresh permutation every epoch, each
    global batch shared among the processes; ``rekey`` re-keys the whole set once an epoch."""

    images: torch.Tensor
    labels: torch.Tensor
    rekey: Rekey
    rank: int = 0
    world: int = 1
    _epoch: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def steps_per_epoch(self, batch_size: int) -> int:
        return len(self) // batch_size if len(self) >= batch_size else 1

    @property
    def order(self) -> str:
        """How an epoch's batches are drawn, as the run's record says."""
        return "in memory: every image in a fresh random order each epoch"

    def start_epoch(self, epoch: int, generator: torch.Generator) -> None:
        """Re-key the set and draw the epoch's order (from ``generator``)."""
        images = self.rekey(self.images, str(epoch))
        order = torch.randperm(len(images), generator=generator).to(images.device)
        self._epoch = images, order

    def batches(self, first: int, steps: int, batch_size: int) -> Iterator[Batch]:
        """This process's part of global batches ``first`` to ``steps - 1`` of the epoch."""
        assert self._epoch is not None, "start_epoch first"
        images, order = self._epoch
        for i in range(first, steps):
            index = order[i * batch_size : (i + 1) * batch_size]
            per_rank = len(index) // self.world
            index = index[self.rank * per_rank : (self.rank + 1) * per_rank]
            yield images[index], self.labels[index], index


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


@dataclass
class ShardFeed:
    """Batches streamed from a sharded upload (see the module's docstring for the shuffle).

    ``workers`` processes read and check shards ahead of training; ``buffer`` is the least
    number of images shuffled together; ``rekey`` re-keys each batch as it is drawn.
    """

    shards: ShardSet
    device: torch.device
    seed: int
    rekey: Rekey
    rank: int = 0
    world: int = 1
    workers: int = 1
    buffer: int = 4096
    _epoch: int = 0

    def __post_init__(self) -> None:
        if len(self.shards.shards) < self.world:
            raise ConfigError(f"the upload's training split has {len(self.shards.shards)} "
                              f"shards, fewer than the {self.world} processes reading them "
                              "(each reads its own)")  # fmt: skip

    def __len__(self) -> int:
        return len(self.shards)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.shards.image_size

    @property
    def shards_per_rank(self) -> int:
        """Shards each process reads an epoch (the rest of the deal waits for the next)."""
        return len(self.shards.shards) // self.world

    def least_images(self) -> int:
        """The fewest images any process can be dealt in an epoch: its shards the smallest."""
        return sum(sorted(self.shards.counts)[: self.shards_per_rank])

    def per_rank(self, batch_size: int) -> int:
        return min(batch_size // self.world, self.least_images())

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.least_images() // self.per_rank(batch_size)

    @property
    def order(self) -> str:
        """How an epoch's batches are drawn, as the run's record says."""
        return (f"streamed from {len(self.shards.shards)} shards: their order shuffled each "
                f"epoch, images shuffled within pools of at least {self.buffer}")  # fmt: skip

    def start_epoch(self, epoch: int, generator: torch.Generator) -> None:
        """The epoch's order is the feed's own (seed, epoch): ``generator`` is left as it is."""
        self._epoch = epoch

    def my_shards(self) -> list[int]:
        """This process's shards this epoch: every ``world``-th of a fresh shard order."""
        order = self.shards.shard_order(_seed(self.seed, "shards", self._epoch))
        return order[self.rank :: self.world][: self.shards_per_rank]

    def batches(self, first: int, steps: int, batch_size: int) -> Iterator[Batch]:
        """This process's batches ``first`` to ``steps - 1`` of the epoch (those before
        ``first`` are drawn and dropped, which resumes an interrupted epoch exactly)."""
        per_rank = self.per_rank(batch_size)
        step = 0
        for pool, order in self._pools(per_rank):
            for start in range(0, len(order) - per_rank + 1, per_rank):
                if step >= steps:
                    return
                if step >= first:
                    images, labels, index = pool.take(order[start : start + per_rank])
                    x = images.to(self.device, non_blocking=True)
                    yield (self.rekey(x, f"{self._epoch}/{self.rank}/{step}"),
                           labels.to(self.device), index.to(self.device))  # fmt: skip
                step += 1
            del pool, order  # before the next pool is read

    def _pools(self, per_rank: int) -> Iterator[tuple[_Pool, torch.Tensor]]:
        """Pools of at least ``buffer`` images with their shuffled order, of which the caller
        takes whole batches of ``per_rank``; the rest opens the next pool."""
        shuffle = torch.Generator().manual_seed(_seed(self.seed, "pool", self._epoch, self.rank))
        mine = self.my_shards()
        held: list[Batch] = []
        for k, part in enumerate(read_ahead(self.shards, mine, self.workers)):
            held.append(part)
            if sum(len(p[2]) for p in held) < self.buffer and k + 1 < len(mine):
                continue
            pool, held = _Pool.of(held), []
            order = torch.randperm(len(pool), generator=shuffle)
            yield pool, order
            held = [pool.take(order[len(order) - len(order) % per_rank :])]
            del pool, order


@dataclass
class _Pool:
    """The images of several shards drawn from as one set, batch by batch, from the shards'
    own tensors: never copied into one (a pool of 224 x 224 photos is most of the memory a
    streamed run takes)."""

    images: list[torch.Tensor]
    starts: torch.Tensor  # each part's first row in the pool
    labels: torch.Tensor
    index: torch.Tensor

    @classmethod
    def of(cls, parts: list[Batch]) -> _Pool:
        images, labels, index = zip(*parts, strict=True)
        starts = torch.tensor([0, *(len(part) for part in images[:-1])]).cumsum(0)
        return cls(list(images), starts, torch.cat(labels), torch.cat(index))

    def __len__(self) -> int:
        return len(self.index)

    def take(self, pick: torch.Tensor) -> Batch:
        """The pool's rows ``pick``: (images, labels, indices)."""
        part = torch.searchsorted(self.starts, pick, right=True) - 1
        first = self.images[0]
        out = first.new_empty((len(pick), *first.shape[1:]))
        for k, images in enumerate(self.images):
            rows = (part == k).nonzero().squeeze(1)
            if len(rows):
                out[rows] = images[pick[rows] - self.starts[k]]
        return out, self.labels[pick], self.index[pick]
