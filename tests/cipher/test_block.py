"""The properties every registered cipher keeps, and what sets the block-wise baselines apart."""

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from scipy import stats

from keyless.cipher import (
    BlockCipher,
    BlockKey,
    EtCCipher,
    ExtendedLearnableCipher,
    LearnableCipher,
    create_cipher,
    list_ciphers,
)
from keyless.cipher._base import CipherBase
from keyless.cipher._block import _KEY_MAGIC, random_permutations
from keyless.errors import InputError, KeyMaterialError
from keyless.invariant import fold
from keyless.keys import SeedSource
from tests.kernel_check import check_cipher

CIPHERS = [create_cipher(name) for name in list_ciphers()] + [
    LearnableCipher(block_size=2),
    EtCCipher(block_size=8),
]


def cipher_id(cipher):
    return f"{cipher.name}-{getattr(cipher, 'block_size', 1)}"


def side(cipher):
    return getattr(cipher, "block_size", 1)


@st.composite
def aligned_batches(draw, cipher):
    m = side(cipher)
    n = draw(st.integers(1, 3))
    h, w = m * draw(st.integers(1, 3)), m * draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen), seed


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_cipher_class_is_registered_under_its_own_name():
    """A cipher class of the package left out of the registry, or under another name, fails."""
    named = {c.name: c for c in subclasses(CipherBase) if c.__module__.startswith("keyless.")
             and hasattr(c, "name")}  # fmt: skip
    assert named and {name: type(create_cipher(name)) for name in list_ciphers()} == named


@pytest.mark.parametrize("cipher", CIPHERS, ids=cipher_id)
@given(data=st.data())
def test_round_trip_and_kernel_invariants(cipher, data):
    images, seed = data.draw(aligned_batches(cipher))
    check_cipher(cipher, images, SeedSource(seed))


@pytest.mark.parametrize("cipher", CIPHERS, ids=cipher_id)
@given(data=st.data())
def test_rekey_is_undone_by_both_keys_in_reverse(cipher, data):
    images, seed = data.draw(aligned_batches(cipher))
    key = cipher.keygen(len(images), images.shape[1:3], SeedSource(seed))
    rekeyed, fresh = cipher.rekey(cipher.encrypt(images, key), SeedSource(seed + 1))
    assert torch.equal(cipher.decrypt(cipher.decrypt(rekeyed, fresh), key), images)


@pytest.mark.parametrize("cipher", CIPHERS, ids=cipher_id)
def test_common_key_broadcasts_and_inputs_keep_their_kind(cipher):
    m = 4 * side(cipher)
    x = torch.randint(0, 256, (5, m, m, 3), dtype=torch.uint8)
    key = cipher.keygen(1, (m, m))
    y = cipher.encrypt(x, key)
    assert not torch.equal(y, x)
    assert all(torch.equal(y[i], cipher.encrypt(x[i], key)) for i in range(5))
    array = x[0].numpy()
    enc = cipher.encrypt(array, key)
    assert isinstance(enc, np.ndarray) and np.array_equal(cipher.decrypt(enc, key), array)
    pil = cipher.encrypt(Image.fromarray(array), key)
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), enc)


@pytest.mark.parametrize("cipher", CIPHERS, ids=cipher_id)
def test_seeds_repeat_keys_follow_ids_and_files_round_trip(cipher, tmp_path):
    m, ids = 2 * side(cipher), ["cat/1", "dog/2"]
    k1 = cipher.keygen(2, (m, m), SeedSource(5), ids=ids)
    assert k1.to_bytes() == cipher.keygen(2, (m, m), SeedSource(5), ids=ids).to_bytes()
    swapped = cipher.keygen(2, (m, m), SeedSource(5), ids=ids[::-1])
    assert swapped[0].to_bytes() == k1[1].to_bytes()  # a key depends on the id, not the order
    assert k1[0].to_bytes() != k1[1].to_bytes()
    k1.save(tmp_path / "key")
    assert cipher.load_key(tmp_path / "key").to_bytes() == k1.to_bytes()
    with pytest.raises(KeyMaterialError, match="does not fit"):
        cipher.encrypt(torch.zeros(3, m, m, 3, dtype=torch.uint8), k1)


@pytest.mark.parametrize(
    "cipher", [c for c in CIPHERS if isinstance(c, BlockCipher)], ids=cipher_id
)
def test_block_ciphers_refuse_unaligned_images_and_bad_keys(cipher, tmp_path):
    m = cipher.block_size
    with pytest.raises(InputError, match=f"divisible by the block size {m}"):
        cipher.keygen(1, (m + 1, m))
    key = cipher.keygen(1, (2 * m, 2 * m), SeedSource(0))
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))
    header = b"KEYLESS-BLOCKKEY-1\n"
    # not an npz, a cut-off one, a bare .npy array
    for bad in (header + b"not an npz", key.to_bytes()[:60], header + npy.getvalue()):
        (tmp_path / "bad").write_bytes(bad)
        with pytest.raises(KeyMaterialError, match="not a keyless block key"):
            cipher.load_key(tmp_path / "bad")
    for broken in (
        BlockKey(key.mask, torch.zeros_like(key.perm), key.positions),
        BlockKey(key.mask, key.perm + 500, key.positions),
        *([] if key.positions is None else [BlockKey(key.mask, key.perm, key.positions * 0)]),
    ):
        broken.save(tmp_path / "broken")
        with pytest.raises(
            KeyMaterialError, match=r"damaged block key: its .* is not a permutation"
        ):
            cipher.load_key(tmp_path / "broken")
    with pytest.raises(ValueError, match="block_size"):
        type(cipher)(block_size=0)


def blocks_of(images, m):
    n, h, w, _ = images.shape
    return images.view(n, h // m, m, w // m, m, 3).permute(0, 1, 3, 2, 4, 5).reshape(n, -1, m, m, 3)


def test_le_uses_one_key_for_all_blocks_ele_one_per_block():
    tile = torch.randint(0, 256, (1, 4, 4, 3), dtype=torch.uint8)
    image = tile.repeat(1, 2, 2, 1)  # four identical blocks
    le = blocks_of(LearnableCipher().encrypt(image, LearnableCipher().keygen(1, (8, 8))), 4)
    assert all(torch.equal(le[0, 0], le[0, b]) for b in range(4))
    ele_cipher = ExtendedLearnableCipher()
    ele = blocks_of(ele_cipher.encrypt(image, ele_cipher.keygen(1, (8, 8))), 4)
    assert not all(torch.equal(ele[0, 0], ele[0, b]) for b in range(4))


def test_le_inverts_nibbles_and_keeps_blocks_in_place():
    cipher = LearnableCipher()
    image = torch.zeros(1, 8, 8, 3, dtype=torch.uint8)
    image[:, :4, :4] = 255  # one white block, three black
    enc = blocks_of(cipher.encrypt(image, cipher.keygen(1, (8, 8), SeedSource(0))), 4)
    # every nibble of a block is v or 15 - v, so white and black blocks map to complements
    assert torch.equal(enc[0, 0], 255 - enc[0, 1]) and torch.equal(enc[0, 1], enc[0, 3])
    nibbles = torch.cat([enc[0, 1] >> 4, enc[0, 1] & 15]).unique().tolist()
    assert nibbles == [0, 15]  # black's nibbles, some inverted (all alike: chance 2^-95)


def test_etc_moves_rotates_and_inverts_whole_blocks():
    cipher = EtCCipher()
    images = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    enc = cipher.encrypt(images, cipher.keygen(4, (16, 16), SeedSource(0)))
    # each encrypted block is some plain block rotated/flipped, colour-shuffled, maybe inverted
    plain_sets = [sorted(fold(b).flatten().tolist()) for b in blocks_of(images, 4)[0]]
    sources = [plain_sets.index(sorted(fold(b).flatten().tolist())) for b in blocks_of(enc, 4)[0]]
    assert sorted(sources) == list(range(16)) and sources != list(range(16))  # blocks moved
    moved = blocks_of(images, 4)[0][sources]
    assert not all(torch.equal(a, b) for a, b in zip(moved, blocks_of(enc, 4)[0], strict=True))


def test_key_space_bits():
    assert LearnableCipher().key_space_bits(32, 32) == pytest.approx(
        math.log2(math.factorial(96)) + 96
    )
    ele = ExtendedLearnableCipher().key_space_bits(32, 32)
    assert ele == pytest.approx(
        64 * LearnableCipher().key_space_bits(32, 32) + math.log2(math.factorial(64))
    )
    assert EtCCipher().key_space_bits(32, 32) == pytest.approx(
        math.log2(math.factorial(64)) + 64 * math.log2(96)
    )


def test_random_permutations_are_uniform():
    perms = random_permutations(SeedSource(0).stream(), 6000, 4)
    assert (np.sort(perms, axis=1) == np.arange(4)).all()
    codes = (perms * 4 ** np.arange(4)).sum(1)  # one integer per permutation
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 24 and stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("name", ["ele", "etc"])
def test_scrambling_ciphers_take_images_of_more_than_32767_blocks(name, tmp_path):
    cipher = create_cipher(name, block_size=1)
    images = torch.randint(0, 256, (1, 129, 256, 3), dtype=torch.uint8)  # 33,024 blocks
    key = cipher.keygen(1, (129, 256), SeedSource(0))
    assert key.positions.max() == 129 * 256 - 1
    assert torch.equal(cipher.decrypt(cipher.encrypt(images, key), key), images)
    # a key file from before positions were int32 still loads
    small = cipher.keygen(1, (8, 8), SeedSource(0))
    old = np.load(io.BytesIO(small.to_bytes()[len(_KEY_MAGIC) :]))
    buffer = io.BytesIO()
    np.savez(
        buffer, mask=old["mask"], perm=old["perm"], positions=old["positions"].astype(np.int16)
    )
    (tmp_path / "old.key").write_bytes(_KEY_MAGIC + buffer.getvalue())
    assert torch.equal(BlockKey.load(tmp_path / "old.key").positions, small.positions)


def test_block_key_rejects_mismatched_parts():
    with pytest.raises(KeyMaterialError, match="equal"):
        BlockKey(torch.zeros(1, 2, 3, dtype=torch.uint8), torch.zeros(1, 2, 4, dtype=torch.int16))
