"""Dynamic batching: concurrent requests share one forward pass."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

_Item = tuple[torch.Tensor, "asyncio.Future[torch.Tensor]"]


class Batcher:
    """Gathers the images of concurrent requests into one call of ``infer`` in a worker thread.

    A batch opens with the oldest waiting request, takes every request already queued or arriving
    within ``max_wait`` seconds, and closes once it holds ``max_batch`` images or more (a request
    is never split). Requests that arrive while a batch runs wait in the queue and form the next.

    Args:
        infer: (N, H, W, 3) uint8 -> (N, ...) results, called in one worker thread at a time.
        max_batch: images at which a batch closes without waiting.
        max_wait: seconds a batch waits for more requests.
    """

    def __init__(
        self,
        infer: Callable[[torch.Tensor], torch.Tensor],
        max_batch: int = 128,
        max_wait: float = 0.002,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait >= 0, got {max_batch}, {max_wait}")
        self.infer, self.max_batch, self.max_wait = infer, max_batch, max_wait
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start gathering, on the running event loop."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="keyless-infer")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop gathering and wait for the worker thread to finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._queue = self._task = self._executor = None

    async def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``infer``'s result for ``images`` (N >= 1), computed in a shared batch."""
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called (run the app's lifespan)")
        future: asyncio.Future[torch.Tensor] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((images, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            count = len(items[0][0])
            deadline = loop.time() + self.max_wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    while count < self.max_batch:
                        items.append(await self._queue.get())
                        count += len(items[-1][0])
            await self._run_batch(items)

    async def _run_batch(self, items: list[_Item]) -> None:
        items = [(images, future) for images, future in items if not future.done()]
        if not items:  # every client went away
            return
        batch = torch.cat([images for images, _ in items])
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.infer, batch
            )
        except Exception as exc:  # the requests of this batch fail, the service goes on
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(
            items, results.split([len(images) for images, _ in items]), strict=True
        ):
            if not future.done():
                future.set_result(result)
