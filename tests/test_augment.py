import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from keyless.augment import (
    flip_where,
    random_contrast,
    random_cutout,
    random_translate,
    reflect_index,
    scale_contrast,
    shift,
)
from keyless.cipher import PixelCipher, PixelKey
from keyless.invariant import sorted_fold


@given(seed=st.integers(0, 2**31), pad=st.integers(0, 3), size=st.integers(4, 9))
def test_augmenting_ciphertexts_equals_encrypting_augmented_images(seed, pad, size):
    cipher = PixelCipher()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (3, size, size, 3), dtype=torch.uint8, generator=gen)
    key = cipher.keygen(3, (size, size))
    flips = torch.tensor([True, False, True])

    def augment(images):
        return random_translate(flip_where(images, flips), pad, torch.Generator().manual_seed(seed))

    moved_key = PixelKey(augment(key.codes[..., None].expand(-1, -1, -1, 3))[..., 0].contiguous())
    assert torch.equal(augment(cipher.encrypt(x, key)), cipher.encrypt(augment(x), moved_key))


def test_reflect_index_and_shift():
    assert reflect_index(torch.arange(-2, 6), 4).tolist() == [2, 1, 0, 1, 2, 3, 2, 1]
    x = torch.arange(4, dtype=torch.uint8).view(1, 1, 4, 1).expand(1, 1, 4, 3)
    assert shift(x, 0, 1)[0, 0, :, 0].tolist() == [1, 2, 3, 2]


@given(seed=st.integers(0, 2**31), strength=st.floats(0.0, 1.0))
def test_contrast_on_ciphertexts_equals_contrast_on_images(seed, strength):
    cipher = PixelCipher()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (4, 5, 5, 3), dtype=torch.uint8, generator=gen)
    key = cipher.keygen(4, (5, 5))

    def contrast(images):
        return random_contrast(images, strength, torch.Generator().manual_seed(seed))

    assert torch.equal(contrast(cipher.encrypt(x, key)), cipher.encrypt(contrast(x), key))


def test_scale_contrast_moves_values_about_mid_grey():
    values = torch.tensor([0, 100, 127, 128, 255], dtype=torch.uint8).view(1, 1, 5, 1)
    scaled = [scale_contrast(values, torch.tensor([f]))[0, 0, :, 0].tolist() for f in (1, 0.5, 2)]
    assert scaled == [[0, 100, 127, 128, 255], [64, 114, 127, 128, 191], [0, 72, 126, 129, 255]]


@given(seed=st.integers(0, 2**31), size=st.integers(1, 5))
def test_cutout_greys_one_square_inside_each_image_and_folds_alike_under_any_key(seed, size):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (4, 6, 7, 3), dtype=torch.uint8, generator=gen)
    x[x == 127] = 0  # so the greyed values are exactly the changed ones
    cut = random_cutout(x, size, torch.Generator().manual_seed(seed))
    changed = (cut != x).all(-1)
    assert changed.sum((1, 2)).tolist() == [size * size] * 4
    for mask in changed:  # one square: its rows and columns are contiguous runs of length size
        rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
        assert rows.tolist() == list(range(rows[0], rows[0] + size))
        assert cols.tolist() == list(range(cols[0], cols[0] + size))
    assert (cut[changed] == 127).all()
    cipher = PixelCipher()
    key = cipher.keygen(4, (6, 7))
    cut_cipher = random_cutout(cipher.encrypt(x, key), size, torch.Generator().manual_seed(seed))
    assert torch.equal(sorted_fold(cut_cipher), sorted_fold(cut))


def test_cutout_zero_is_the_identity_and_too_large_is_refused():
    x = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    assert random_cutout(x, 0, torch.Generator()) is x
    with pytest.raises(ValueError, match="cutout of 5 pixels does not fit 4x4 images"):
        random_cutout(x, 5, torch.Generator())


def test_block_translate_shifts_each_block_within_itself_and_commutes_with_the_scramble():
    from keyless.augment import random_block_translate
    from keyless.cipher import PixelCipher, PixelKey, ScrambledPixelCipher
    from keyless.invariant import blocks_of, image_of

    cipher = ScrambledPixelCipher(block_size=8)
    plain = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    key = cipher.keygen(3, (32, 32))
    encrypted = cipher.encrypt(plain, key)
    moved = random_block_translate(encrypted, 8, 2, torch.Generator().manual_seed(0))
    assert not torch.equal(moved, encrypted)
    assert torch.equal(random_block_translate(encrypted, 8, 0, torch.Generator()), encrypted)
    # the same offsets, block by block, on the plain image's blocks where they landed
    blocks = blocks_of(plain, 8)
    landed = torch.gather(blocks, 1, key.positions.long()[..., None].expand_as(blocks))
    shifted = random_block_translate(
        image_of(landed, 32, 32, 8), 8, 2, torch.Generator().manual_seed(0)
    )
    pixel_key = key.pixel.codes[..., None]  # PE codes follow their pixels the same way
    codes = image_of(
        torch.gather(blocks_of(pixel_key, 8), 1, key.positions.long()[..., None].expand(3, 16, 64)),
        32,
        32,
        8,
    )
    codes = random_block_translate(codes.expand(3, 32, 32, 3).contiguous(), 8, 2,
                                   torch.Generator().manual_seed(0))[..., 0]  # fmt: skip
    assert torch.equal(PixelCipher().encrypt(shifted, PixelKey(codes)), moved)
