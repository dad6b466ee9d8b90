import numpy as np
import pytest

from benchmarks.webp_pack import TILE, pack, unpack


def test_pack_and_unpack_give_the_npz_back_byte_for_byte(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (2 * TILE, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 2 * TILE, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (TILE, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, TILE, dtype=np.uint8),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    pack(tmp_path / "d.npz", tmp_path / "packed", parts=2)
    parts = sorted((tmp_path / "packed").iterdir())
    assert [p.name for p in parts] == ["part-0", "part-1"]  # the test split and labels last
    unpack(parts, tmp_path / "back.npz")
    back = np.load(tmp_path / "back.npz")
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name


def test_pack_refuses_counts_that_do_not_tile(tmp_path):
    x = np.zeros((TILE + 1, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.zeros(TILE + 1, np.uint8), x_test=x,
             y_test=np.zeros(TILE + 1, np.uint8))  # fmt: skip
    with pytest.raises(SystemExit, match="multiples of 50"):
        pack(tmp_path / "d.npz", tmp_path / "packed", parts=2)
