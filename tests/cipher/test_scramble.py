"""PE with a keyed block scramble, and owner-side noise: round trips, invariants, key files."""

import pytest
import torch

from keyless.cipher import PixelCipher, ScrambledKey, ScrambledPixelCipher, create_cipher
from keyless.errors import InputError, KeyMaterialError
from keyless.invariant import blocks_of, canonical_blocks, image_of, sort_rows, sorted_fold
from keyless.keys import SeedSource
from tests.kernel_check import check_cipher


def random_images(n, side=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, side, side, 3), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("m", [4, 8, 16])
@pytest.mark.parametrize("noise", [0.0, 12.0])
def test_scramble_passes_the_kernel_checker(m, noise):
    check_cipher(ScrambledPixelCipher(block_size=m, noise=noise), random_images(5), SeedSource(1))


@pytest.mark.parametrize("m", [4, 8, 16])
def test_the_invariant_is_the_same_for_a_plain_image_and_two_fresh_encryptions(m):
    cipher = ScrambledPixelCipher(block_size=m)
    plain = random_images(6)
    first, second = cipher.encrypt_fresh(plain)[0], cipher.encrypt_fresh(plain)[0]
    assert not torch.equal(first, second)
    invariant = cipher.key_invariant(plain)
    assert torch.equal(cipher.key_invariant(first), invariant)
    assert torch.equal(cipher.key_invariant(second), invariant)
    # it is the bag of the blocks' sorted folds: the blocks of PE's invariant, reordered
    pe_blocks = blocks_of(sorted_fold(plain), m).sort(1).values
    assert torch.equal(blocks_of(invariant, m).sort(1).values, pe_blocks)
    assert not torch.equal(invariant[0], invariant[1])  # not a constant


def test_the_scramble_moves_whole_blocks_and_keeps_each_blocks_pe_ciphertext():
    cipher = ScrambledPixelCipher(block_size=8)
    plain = random_images(3)
    key = cipher.keygen(3, (32, 32), SeedSource(2))
    pe_only = PixelCipher().encrypt(plain, key.pixel)
    moved = blocks_of(cipher.encrypt(plain, key), 8)
    expected = torch.gather(
        blocks_of(pe_only, 8), 1, key.positions.long()[..., None].expand_as(moved)
    )
    assert torch.equal(moved, expected)
    assert (key.positions != torch.arange(16)).any()  # the blocks did move


def test_sort_rows_is_lexicographic_and_returns_the_order():
    rows = torch.tensor([[[3, 1, 2], [1, 9, 9], [3, 1, 1], [1, 9, 9]]])
    ordered, order = sort_rows(rows)
    assert ordered.tolist() == [[[1, 9, 9], [1, 9, 9], [3, 1, 1], [3, 1, 2]]]
    assert torch.equal(torch.gather(rows, 1, order[..., None].expand_as(rows)), ordered)
    images = random_images(2, 16)
    assert torch.equal(image_of(blocks_of(images, 4), 16, 16, 4), images)
    assert canonical_blocks(images, 4).shape == images.shape


def test_scramble_keys_round_trip_through_a_file_and_damaged_ones_are_refused(tmp_path):
    cipher = ScrambledPixelCipher(block_size=8)
    key = cipher.keygen(2, (16, 16), SeedSource(0))
    key.save(tmp_path / "key")
    loaded = cipher.load_key(tmp_path / "key")
    assert loaded.to_bytes() == key.to_bytes()
    (tmp_path / "bad").write_bytes(b"KEYLESS-SCRAMBLEKEY-1\nnot an npz")
    with pytest.raises(KeyMaterialError, match="not a keyless scramble key"):
        cipher.load_key(tmp_path / "bad")
    ScrambledKey(key.pixel, key.positions * 0).save(tmp_path / "broken")
    with pytest.raises(KeyMaterialError, match="damaged scramble key"):
        cipher.load_key(tmp_path / "broken")
    with pytest.raises(KeyMaterialError, match="does not fit"):
        cipher.encrypt(random_images(3, 16), cipher.keygen(2, (16, 16)))


def test_scramble_refuses_images_that_do_not_divide_into_blocks():
    with pytest.raises(InputError, match="divisible by the block size 8"):
        ScrambledPixelCipher(block_size=8).keygen(1, (12, 16))
    with pytest.raises(ValueError, match="block_size"):
        ScrambledPixelCipher(block_size=0)


def test_owner_noise_is_what_decryption_gives_back_and_rekeying_adds_none():
    cipher = create_cipher("pe", noise=16.0)
    plain = random_images(8)
    encrypted, key = cipher.encrypt_fresh(plain, SeedSource(0))
    noisy = cipher.decrypt(encrypted, key)
    error = noisy.float() - plain.float()
    assert 14 < error.std() < 17  # clipping at 0 and 255 trims it a little
    assert torch.equal(cipher.obscure(plain, SeedSource(0)), noisy)  # seeded: reproducible
    rekeyed, _ = cipher.rekey(encrypted, SeedSource(1))
    assert torch.equal(sorted_fold(rekeyed), sorted_fold(encrypted))  # no second dose
    assert torch.equal(PixelCipher().obscure(plain), plain)
    with pytest.raises(ValueError, match="noise must be"):
        PixelCipher(noise=-1)


@pytest.mark.parametrize("m", [4, 8, 16])
def test_two_chosen_images_open_every_image_under_a_common_scramble_key(m):
    from keyless.attacks._classic import ScrambleHelperAttack

    cipher = ScrambledPixelCipher(block_size=m)
    key = cipher.keygen(1, (32, 32), SeedSource(3))
    plain = random_images(4)
    attack = ScrambleHelperAttack(cipher, lambda image: cipher.encrypt(image, key))
    found = attack.recover_key(32, 32)
    assert torch.equal(found.positions, key.positions)
    assert torch.equal(attack.reconstruct(cipher.encrypt(plain, key)), plain)
