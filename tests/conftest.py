import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.register_profile("ci", deadline=None, max_examples=150, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
# one torch thread: the tests' models are tiny, and on a shared machine two threads that wait for
# each other (OpenMP spins) made tests/models -m "not slow" six times slower (106 and 115 s
# against 18 and 16 s, with a load of 9 on 2 cores, 2026-12-07)
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_torch_thread() -> None:
    """Again before each test: the ciphers' parallel numba kernels set the OpenMP thread count
    that torch shares back to every core."""
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped where torch sees no CUDA GPU."""
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture
def exact_device() -> str:
    """Where a test that compares results bit for bit trains and predicts: the CPU, unless
    deterministic algorithms are on (then the default device, CUDA where present)."""
    if torch.are_deterministic_algorithms_enabled() and torch.cuda.is_available():
        return "cuda"
    return "cpu"
