"""The one kernel every pixel transform runs through: ``out[c] = x[src[c]] ^ mask[c]`` per pixel.

A transform table has one row per code: three source components, then three XOR masks. On CPU a
numba kernel does one fused pass (about 10x faster than torch's gather, which needs an int64
index per value); on other devices torch's gather does the same thing batched on the device.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numba
import numpy as np

from keyless._lazy import torch

_CHUNK = 1 << 16  # pixels per parallel work item
# Below this many pixels (about 1.3 ms of serial work), waking numba's thread pool can cost more
# than it saves: on a loaded machine a parallel call waits for a descheduled thread (4-8 ms
# measured on 2 shared cores for 2 to 16 keys of 224 x 224), whatever its size.
_PARALLEL_MIN = 16 * _CHUNK
_serial = False


def use_serial_kernels() -> None:
    """Run every kernel of this process on its own thread (same chunks, same results): for
    worker processes that already keep one core each busy, and for forked children."""
    global _serial
    _serial = True


# numba's OpenMP threading layer (GNU libgomp) kills a forked child that runs a parallel kernel,
# e.g. a DataLoader worker forked after the parent encrypted: forked children run serially.
os.register_at_fork(after_in_child=use_serial_kernels)


def _parallel(n: int) -> bool:
    """Whether ``n`` pixels go through numba's thread pool: not in a serial process, and enough
    of them to pay for waking the threads."""
    return n >= _PARALLEL_MIN and not _serial


@numba.njit(cache=True, boundscheck=False)
def _apply_chunk(
    x: np.ndarray, codes: np.ndarray, table: np.ndarray, out: np.ndarray, chunk: int
) -> None:
    for p in range(chunk * _CHUNK, min(codes.shape[0], (chunk + 1) * _CHUNK)):
        k = codes[p]
        out[p, 0] = x[p, table[k, 0]] ^ table[k, 3]
        out[p, 1] = x[p, table[k, 1]] ^ table[k, 4]
        out[p, 2] = x[p, table[k, 2]] ^ table[k, 5]


@numba.njit(parallel=True, cache=True, boundscheck=False)
def _apply_parallel(x: np.ndarray, codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    for chunk in numba.prange((codes.shape[0] + _CHUNK - 1) // _CHUNK):
        _apply_chunk(x, codes, table, out, chunk)


@numba.njit(cache=True, boundscheck=False)
def _apply_serial(x: np.ndarray, codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    for chunk in range((codes.shape[0] + _CHUNK - 1) // _CHUNK):
        _apply_chunk(x, codes, table, out, chunk)


@numba.njit(cache=True, boundscheck=False)
def _codes_chunk(
    raw: np.ndarray, spare: np.ndarray, lut: np.ndarray, out: np.ndarray, chunk: int, share: int
) -> bool:
    """Codes for one chunk from its own share of the spare pool; ``False`` if the share ran dry."""
    j, end = chunk * share, (chunk + 1) * share
    for p in range(chunk * _CHUNK, min(raw.shape[0], (chunk + 1) * _CHUNK)):
        value = lut[raw[p]]
        while value == 255 and j < end:  # 255 marks a rejected byte
            value = lut[spare[j]]
            j += 1
        out[p] = value
    return j < end


@numba.njit(parallel=True, cache=True, boundscheck=False)
def _codes_parallel(raw: np.ndarray, spare: np.ndarray, lut: np.ndarray, out: np.ndarray) -> bool:
    chunks = (raw.shape[0] + _CHUNK - 1) // _CHUNK
    share = spare.shape[0] // max(chunks, 1)
    dry = 0
    for chunk in numba.prange(chunks):
        if not _codes_chunk(raw, spare, lut, out, chunk, share):
            dry += 1
    return dry == 0


@numba.njit(cache=True, boundscheck=False)
def _codes_serial(raw: np.ndarray, spare: np.ndarray, lut: np.ndarray, out: np.ndarray) -> bool:
    chunks = (raw.shape[0] + _CHUNK - 1) // _CHUNK
    share = spare.shape[0] // max(chunks, 1)
    wet = True
    for chunk in range(chunks):
        wet &= _codes_chunk(raw, spare, lut, out, chunk, share)
    return wet


def uniform_bytes(read: Callable[[int], np.ndarray], n: int, modulus: int) -> np.ndarray:
    """``n`` values uniform on ``0..modulus-1`` from a byte source, by rejection sampling.

    Bytes at or above the largest multiple of ``modulus`` are replaced by the next bytes of a
    spare pool (each parallel chunk has its own, twice the expected need); if a pool ever runs
    dry the whole draw is repeated with fresh bytes and a larger pool.
    """
    accept = 256 - 256 % modulus
    lut = np.where(np.arange(256) < accept, np.arange(256) % modulus, 255).astype(np.uint8)
    spare_share = 2 * (256 - accept) / 256 + 1 / 64
    out = np.empty(n, np.uint8)
    while True:
        raw = read(n)
        spare = read(int(n * spare_share) + 64 * (n // _CHUNK + 1))
        codes = _codes_parallel if _parallel(n) else _codes_serial
        if codes(raw, spare, lut, out):
            return out
        spare_share *= 2


def _apply_torch(x: torch.Tensor, codes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    row = table.to(x.device)[codes.long()]
    return torch.gather(x, 1, row[:, :3]) ^ row[:, 3:].to(torch.uint8)


def apply_transforms(x: torch.Tensor, codes: torch.Tensor, table: np.ndarray) -> torch.Tensor:
    """Transform every pixel of ``x`` by its code's table row.

    Args:
        x: (N, H, W, 3) uint8.
        codes: (N, H, W) uint8 row indices into ``table``, on the same device as ``x``.
        table: (K, 6) int64 rows ``(src0, src1, src2, mask0, mask1, mask2)``.

    Returns:
        A new (N, H, W, 3) uint8 tensor; ``x`` is not modified.
    """
    flat = x.reshape(-1, 3)
    flat_codes = codes.reshape(-1)
    if x.device.type != "cpu":
        return _apply_torch(flat, flat_codes, torch.from_numpy(table)).view(x.shape)
    out = torch.empty(x.shape, dtype=torch.uint8)
    if flat.numel():
        (_apply_parallel if _parallel(len(flat)) else _apply_serial)(
            flat.contiguous().numpy(),
            flat_codes.contiguous().numpy(),
            table.astype(np.uint8),
            out.view(-1, 3).numpy(),
        )
    return out
