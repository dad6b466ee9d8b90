import numpy as np
import pytest

from tools.webp_pack import TILE, pack, unpack


@pytest.mark.parametrize("side", [4, pytest.param(TILE, marks=pytest.mark.slow)])
def test_pack_and_unpack_give_the_npz_back_byte_for_byte(tmp_path, side):
    """Three training tiles (the last one partial) and one test tile, of side x side images:
    small ones, and the tool's own (5,100 random images of 32 x 32 to encode, seconds)."""
    rng = np.random.default_rng(0)
    n_train = 2 * side * side + side
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 1000, n_train, dtype=np.int64),
        "x_test": rng.integers(0, 256, (side, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, side, dtype=np.uint8),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    pack(tmp_path / "d.npz", tmp_path / "packed", parts=3, side=side)
    parts = sorted((tmp_path / "packed").iterdir())
    assert [len(list(p.glob("*.webp"))) for p in parts] == [2, 1, 1]
    unpack(parts[::-1], tmp_path / "back.npz")  # the order of the folders does not matter
    back = np.load(tmp_path / "back.npz")
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name


def test_pack_refuses_counts_that_do_not_tile(tmp_path):
    x = np.zeros((TILE + 1, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.zeros(TILE + 1, np.uint8), x_test=x,
             y_test=np.zeros(TILE + 1, np.uint8))  # fmt: skip
    with pytest.raises(SystemExit, match="multiples of 50"):
        pack(tmp_path / "d.npz", tmp_path / "packed", parts=2)
    np.savez(tmp_path / "d.npz", x_train=x[:TILE], y_train=np.zeros(TILE, np.uint8),
             x_test=x[:TILE], y_test=np.zeros(TILE, np.uint8))  # fmt: skip
    with pytest.raises(SystemExit, match="--parts must be 1 to 2"):
        pack(tmp_path / "d.npz", tmp_path / "packed", parts=3)
