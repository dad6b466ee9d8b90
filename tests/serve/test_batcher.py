import asyncio

import pytest
import torch

from keyless.serve import Batcher


def run_requests(batcher, sizes):
    """Send requests of ``sizes`` images at once; each image holds its request index."""

    async def main():
        batcher.start()
        try:
            requests = [torch.full((n, 1, 1, 3), i, dtype=torch.uint8) for i, n in enumerate(sizes)]
            return await asyncio.gather(*(batcher(r) for r in requests), return_exceptions=True)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_requests_share_batches_and_get_their_own_rows():
    log = []

    def infer(batch):
        log.append(len(batch))
        return batch[:, 0, 0, 0].float() * 10

    results = run_requests(Batcher(infer, max_batch=4, max_wait=0.05), [1, 1, 3, 1, 2, 1, 1])
    assert log == [5, 4, 1]  # closes at >= 4 images without splitting a request; the rest waits
    for i, (result, n) in enumerate(zip(results, [1, 1, 3, 1, 2, 1, 1], strict=True)):
        assert torch.equal(result, torch.full((n,), 10.0 * i))


def test_a_failed_batch_fails_its_requests_and_the_next_batch_runs():
    log = []

    def infer(batch):
        log.append(len(batch))
        if len(log) == 1:
            raise RuntimeError("out of memory")
        return batch[:, 0, 0, 0].float()

    results = run_requests(Batcher(infer, max_batch=2, max_wait=0.05), [1, 1, 1])
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert torch.equal(results[2], torch.tensor([2.0]))


def test_calls_before_start_and_bad_settings_are_refused():
    with pytest.raises(RuntimeError, match="start"):
        asyncio.run(Batcher(lambda x: x)(torch.zeros(1, 1, 1, 3)))
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(lambda x: x, max_batch=0)
