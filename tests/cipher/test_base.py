"""What every registered cipher promises: settings, fresh-key encryption, declared capabilities."""

import json

import numpy as np
import pytest
import torch

from keyless.cipher import (
    EtCCipher,
    LearnableCipher,
    PixelCipher,
    PixelKey,
    cipher_from_settings,
    create_cipher,
    list_ciphers,
)
from keyless.errors import InputError
from keyless.keys import SeedSource
from keyless.runs import TrainConfig, cipher_label

CIPHERS = [create_cipher(name) for name in list_ciphers()] + [
    PixelCipher(shuffle=False, np_per="pixel"),
    PixelCipher(np_mode="balanced"),
    LearnableCipher(block_size=2, per_block=True),
    EtCCipher(block_size=8),
]
MOVES = {
    "hflip": lambda t: t.flip(2),
    "vflip": lambda t: t.flip(1),
    "shift": lambda t: t.roll(1, dims=2),
}


def cipher_id(cipher):
    return "-".join(str(v) for v in cipher.settings().values())


def random_images(n, side, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, side, side, 3), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("cipher", CIPHERS, ids=cipher_id)
def test_settings_round_trip_through_json(cipher):
    settings = cipher.settings()
    assert settings["name"] == cipher.name
    restored = cipher_from_settings(json.loads(json.dumps(settings)))
    assert restored == cipher and restored.settings() == settings


def test_stored_settings_still_build():
    assert cipher_from_settings({}) == PixelCipher()  # older records store {} for the default
    assert cipher_from_settings({"name": "le", "block_size": 4}) == LearnableCipher()
    assert PixelCipher(shuffle=False).settings() == {
        "name": "pe",
        "shuffle": False,
        "np_mode": "coin",
        "np_per": "component",
    }
    assert PixelCipher(noise=8).settings()["noise"] == 8  # shown only when there is some


@pytest.mark.parametrize(
    ("cipher", "label"),
    [
        (PixelCipher(), "pe"),
        (PixelCipher(shuffle=False), "pe shuffle=False"),
        (LearnableCipher(block_size=4), "le"),
        (EtCCipher(block_size=8), "etc block_size=8"),
    ],
)
def test_cipher_label_names_changed_options(cipher, label):
    assert cipher_label(TrainConfig(keys="common", cipher=cipher)) == label
    assert cipher_label(TrainConfig(keys="plain", cipher=cipher)) == ""


@pytest.mark.parametrize("cipher", CIPHERS, ids=cipher_id)
def test_encrypt_fresh_draws_one_key_per_image_and_replays(cipher):
    images = random_images(4, 32)  # 16 blocks of 8x8: two equal CSPRNG keys are out of reach
    encrypted, key = cipher.encrypt_fresh(images)
    assert len(key) == 4 and len({key[i].to_bytes() for i in range(4)}) == 4
    assert not torch.equal(encrypted, images)
    assert torch.equal(cipher.decrypt(encrypted, key), images)
    again, again_key = cipher.encrypt_fresh(images, SeedSource(0))
    replay, replay_key = cipher.encrypt_fresh(images, SeedSource(0))
    assert torch.equal(again, replay) and again_key.to_bytes() == replay_key.to_bytes()
    ids = ["a", "b", "c", "d"]
    _, by_id = cipher.encrypt_fresh(images, SeedSource(0), ids)
    assert by_id.to_bytes() == cipher.keygen(4, (32, 32), SeedSource(0), ids).to_bytes()


@pytest.mark.parametrize("name", list_ciphers())
def test_encrypt_fresh_keeps_the_input_kind(name):
    cipher = create_cipher(name)
    image = random_images(1, 8)[0].numpy()
    encrypted, key = cipher.encrypt_fresh(image)
    assert isinstance(encrypted, np.ndarray) and encrypted.shape == image.shape and len(key) == 1
    assert np.array_equal(cipher.decrypt(encrypted, key), image)
    bgr = image[..., ::-1]  # negative strides, as OpenCV's BGR to RGB leaves them
    encrypted, key = cipher.encrypt_fresh(bgr)
    assert np.array_equal(cipher.decrypt(encrypted, key), bgr)
    for bad in (image.astype(object), image.astype(bool)):
        with pytest.raises(
            InputError, match=r"expected uint8 images of shape .*, got (object|bool)"
        ):
            cipher.encrypt_fresh(bad)


@pytest.mark.cuda
@pytest.mark.parametrize("name", list_ciphers())
def test_encrypt_fresh_keys_live_on_the_images_device(name):
    cipher = create_cipher(name)
    images = random_images(2, 8).cuda()
    encrypted, key = cipher.encrypt_fresh(images)
    assert encrypted.is_cuda and torch.equal(cipher.decrypt(encrypted, key), images)


@pytest.mark.parametrize("name", list_ciphers())
@pytest.mark.parametrize("move", MOVES.values(), ids=MOVES.keys())
def test_commutes_with_moves_is_true_exactly_when_declared(name, move):
    cipher = create_cipher(name)
    images = random_images(3, 8)
    key = cipher.keygen(3, (8, 8), SeedSource(0))
    encrypted = cipher.encrypt(images, key)
    if cipher.commutes_with_moves:
        moved_key = PixelKey(move(key.codes))  # a per-pixel key moves with its pixels
        assert torch.equal(move(encrypted), cipher.encrypt(move(images), moved_key))
    else:
        # a moved ciphertext no longer decrypts to the moved image: the move cut the blocks
        assert not torch.equal(cipher.decrypt(move(encrypted), key), move(images))


@pytest.mark.parametrize("name", list_ciphers())
def test_commutes_with_moves_exactly_when_a_pixel_only_affects_itself(name):
    # per-pixel keys are what lets a key move with its pixels; a block cipher spreads a pixel
    cipher = create_cipher(name)
    images = random_images(4, 16)  # two blocks a side for the block-wise ciphers
    changed = images.clone()
    changed[:, 1, 1] ^= 255
    key = cipher.keygen(4, (16, 16), SeedSource(0))
    differs = (cipher.encrypt(images, key) != cipher.encrypt(changed, key)).any(-1)
    only_there = torch.zeros_like(differs)
    only_there[:, 1, 1] = True
    assert torch.equal(differs, only_there) == cipher.commutes_with_moves
