"""Key invariants: what every key of a cipher leaves unchanged, and that it is no coarser than
it must be (the block ciphers' invariants checked against slow reference versions)."""

from itertools import permutations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from keyless.attacks import ITNAttack
from keyless.cipher import (
    EtCCipher,
    ExtendedLearnableCipher,
    LearnableCipher,
    create_cipher,
    list_ciphers,
)
from keyless.keys import SeedSource

BLOCK_CIPHERS = [
    LearnableCipher(),
    LearnableCipher(block_size=2),
    LearnableCipher(per_block=True),  # a key per block, blocks in place
    LearnableCipher(scramble=True),  # one key, blocks moved: a true but not maximal invariant
    ExtendedLearnableCipher(),
    ExtendedLearnableCipher(block_size=2),
    EtCCipher(),
    EtCCipher(block_size=2),
    EtCCipher(block_size=1),
]


def cipher_id(cipher):
    options = cipher.settings()
    return "-".join(f"{v}" if k == "name" else f"{k}={v}" for k, v in options.items())


def random_images(n, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("name", list_ciphers())
def test_every_registered_cipher_declares_an_invariant_no_key_changes(name):
    cipher = create_cipher(name)
    images = random_images(3, 32, 32)
    invariant = cipher.key_invariant(images)
    assert invariant is not None and invariant.shape == images.shape
    assert invariant.dtype == torch.uint8
    for seed in range(2):
        ciphertexts = cipher.encrypt_fresh(images, SeedSource(seed))[0]
        assert not torch.equal(ciphertexts, images)
        assert torch.equal(cipher.key_invariant(ciphertexts), invariant)
    assert not torch.equal(invariant[0], invariant[1])  # not a constant


@pytest.mark.parametrize("cipher", BLOCK_CIPHERS, ids=cipher_id)
@given(data=st.data())
def test_block_invariant_depends_on_the_plain_image_only(cipher, data):
    m = cipher.block_size
    n, rows, cols = (data.draw(st.integers(1, 3)) for _ in range(3))
    images = random_images(n, m * rows, m * cols, data.draw(st.integers(0, 2**32 - 1)))
    invariant = cipher.key_invariant(images)
    for seed in data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2)):
        fresh = cipher.encrypt(images, cipher.keygen(n, images.shape[1:3], SeedSource(seed)))
        common = cipher.encrypt(images, cipher.keygen(1, images.shape[1:3], SeedSource(seed)))
        assert torch.equal(cipher.key_invariant(fresh), invariant)
        assert torch.equal(cipher.key_invariant(common), invariant)
    assert all(
        torch.equal(invariant[i], cipher.key_invariant(images[i : i + 1])[0]) for i in range(n)
    )
    assert torch.equal(cipher.key_invariant(invariant), invariant)  # a canonical form
    assert cipher.key_invariant(images[:0]).shape == (0, *images.shape[1:])


def nibble_blocks(image, m):
    """(H, W, 3) uint8 numpy -> (B, 6 m^2) nibbles, blocks in raster order (reference)."""
    h, w, _ = image.shape
    blocks = [
        image[r : r + m, c : c + m].reshape(-1) for r in range(0, h, m) for c in range(0, w, m)
    ]
    return np.array([np.stack([b >> 4, b & 15], 1).reshape(-1) for b in blocks])


def etc_least(block):
    """(m, m, 3) uint8 -> the least of its 96 rotations/flips, colour orders and inversions."""
    spatial = [np.rot90(b, k) for b in (block, block.transpose(1, 0, 2)) for k in range(4)]
    return min(
        tuple(int(v) for v in c.reshape(-1))
        for s in spatial
        for order in permutations(range(3))
        for c in (s[..., list(order)], 255 - s[..., list(order)])
    )


@pytest.mark.parametrize("m", [1, 2, 4])
def test_invariants_match_slow_reference_versions(m):
    images = random_images(2, 8, 12, seed=m)
    images[1, :m, :] = 200  # equal and symmetric blocks: ties among candidates
    le, ele, etc = LearnableCipher(m), ExtendedLearnableCipher(m), EtCCipher(m)
    for image, got_le, got_ele, got_etc in zip(
        images.numpy(),
        le.key_invariant(images),
        ele.key_invariant(images),
        etc.key_invariant(images),
        strict=True,
    ):
        nibbles = nibble_blocks(image, m)
        # LE: the columns of the nibble matrix, each the lesser of itself and its complement
        columns = sorted(min(tuple(col), tuple(15 - col)) for col in nibbles.T)
        assert [tuple(col) for col in nibble_blocks(got_le.numpy(), m).T] == columns
        # ELE: every block's sorted folds, the blocks sorted
        folds = sorted(tuple(sorted(np.minimum(b, 15 - b))) for b in nibbles)
        assert [tuple(b) for b in nibble_blocks(got_ele.numpy(), m)] == folds
        # EtC: every block's least candidate, the blocks sorted
        h, w, _ = image.shape
        least = sorted(
            etc_least(image[r : r + m, c : c + m]) for r in range(0, h, m) for c in range(0, w, m)
        )
        got = got_etc.numpy()
        assert [
            tuple(got[r : r + m, c : c + m].reshape(-1))
            for r in range(0, h, m)
            for c in range(0, w, m)
        ] == least


def test_each_invariant_keeps_what_its_keys_cannot_reach():
    le, ele, etc = LearnableCipher(), ExtendedLearnableCipher(), EtCCipher()
    image = random_images(1, 16, 16)
    swapped = image.clone()
    swapped[:, :4, :4], swapped[:, :4, 4:8] = image[:, :4, 4:8], image[:, :4, :4]
    inverted = image.clone()
    inverted[0, 0, 0, 0] = 255 - inverted[0, 0, 0, 0]  # both nibbles complemented
    same = {
        "le": [
            torch.equal(le.key_invariant(x), le.key_invariant(image)) for x in (swapped, inverted)
        ],
        "ele": [
            torch.equal(ele.key_invariant(x), ele.key_invariant(image)) for x in (swapped, inverted)
        ],
        "etc": [
            torch.equal(etc.key_invariant(x), etc.key_invariant(image)) for x in (swapped, inverted)
        ],
    }
    # LE keeps block positions; ELE forgets positions and one value's inversion; EtC inverts
    # whole blocks only, so a single inverted value shows
    assert same == {"le": [False, False], "ele": [True, True], "etc": [True, False]}


@pytest.mark.parametrize("name", ["le", "ele", "etc"])
@pytest.mark.slow
def test_invariant_attack_learns_from_block_invariants(name):
    torch.manual_seed(0)
    cipher = create_cipher(name)
    attack = ITNAttack("unet", cipher, epochs=1, batch_size=8, invariant=True, levels=2,
                       width=8, precision="fp32")  # fmt: skip
    attack.fit(random_images(16, 32, 32), SeedSource(0))
    plain = random_images(2, 32, 32, seed=1)
    guesses = [attack.reconstruct(cipher.encrypt_fresh(plain, SeedSource(s))[0]) for s in (2, 3)]
    assert guesses[0].shape == plain.shape and torch.equal(*guesses)


@pytest.mark.cuda
@pytest.mark.parametrize(
    "cipher", [create_cipher(n) for n in list_ciphers()] + BLOCK_CIPHERS, ids=cipher_id
)
def test_invariant_is_the_same_on_cpu_and_cuda(cipher):
    images = random_images(3, 16, 16)
    assert torch.equal(cipher.key_invariant(images.cuda()).cpu(), cipher.key_invariant(images))
