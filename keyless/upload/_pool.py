"""Work spread over processes with one progress bar: each task runs in a worker process (or
inline, for one worker) and its result comes back to the caller in task order.

Workers draw keys from their own CSPRNG streams (every stream is keyed by ``os.urandom``) or,
with keys that follow image ids, exactly the keys one process would; they run the cipher
kernels on one thread each (the workers already keep the cores busy) and, on Linux, die with
the process that started them, so that a killed run leaves no worker writing behind it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TypeVar

from tqdm import tqdm

Task = TypeVar("Task")
Result = TypeVar("Result")
_PR_SET_PDEATHSIG = 1  # prctl(2)


def _start_worker() -> None:
    """A worker's set-up: serial kernels, one torch thread, death with its parent (Linux)."""
    import torch

    from keyless.cipher._kernel import use_serial_kernels

    use_serial_kernels()
    torch.set_num_threads(1)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_tasks(
    tasks: Sequence[Task],
    fn: Callable[[Task], Result],
    workers: int,
    desc: str,
    weight: Callable[[Task], int] = lambda task: 1,
) -> list[Result]:
    """``[fn(task) for task in tasks]``, over ``workers`` processes when more than one.

    ``fn`` and the tasks must pickle (a module-level function, or a ``functools.partial`` of
    one). The progress bar ``desc`` counts ``weight(task)`` units per finished task.
    """
    total = sum(weight(task) for task in tasks)

    def progress() -> tqdm:
        return tqdm(total=total, desc=desc, unit="image", disable=total < 2)

    if workers <= 1 or len(tasks) <= 1:
        results = []
        with progress() as bar:
            for task in tasks:
                results.append(fn(task))
                bar.update(weight(task))
        return results
    # fork where it is safe and cheap (Linux): the workers start at once, without importing
    # torch again; elsewhere spawn
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    workers = min(workers, len(tasks))
    with ProcessPoolExecutor(workers, context, initializer=_start_worker) as pool:
        futures = {pool.submit(fn, task): index for index, task in enumerate(tasks)}
        pending = set(futures)
        with progress() as bar:  # after the workers started: no thread of its own is forked
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                bar.update(sum(weight(tasks[futures[future]]) for future in done))
        return [future.result() for future in futures]
