"""The page's cipher (``keyless/serve/static/cipher.js``) in headless Chromium against the
library's: the same key gives the same bytes, and the keys the page draws are keys of the
cipher."""

from importlib.resources import files

import numpy as np
import pytest
import torch

from keyless.cipher import (
    BlockKey,
    PixelKey,
    ScrambledKey,
    cipher_from_settings,
    create_cipher,
    list_ciphers,
)
from keyless.keys import SeedSource

SIZE = 32
# PE and its variants, and every other registered cipher, with options off their defaults
SETTINGS = [
    {"name": "pe"},
    {"name": "pe", "shuffle": False},
    {"name": "pe", "np_per": "pixel"},
    {"name": "pe", "np_mode": "balanced"},
    {"name": "pe", "noise": 3.0},
    {"name": "pe-scramble"},
    {"name": "pe-scramble", "block_size": 4, "np_per": "pixel"},
    {"name": "le"},
    {"name": "le", "block_size": 8, "per_block": True},
    {"name": "le", "scramble": True},
    {"name": "ele"},
    {"name": "ele", "block_size": 2},
    {"name": "etc"},
    {"name": "etc", "block_size": 8},
]
IDS = ["-".join(f"{v}" for v in s.values()) for s in SETTINGS]


@pytest.fixture
def page(browser):
    """The browser on a blank page holding the shipped cipher.js, as the page loads it."""
    if not browser.execute_script("return typeof keylessCipher !== 'undefined'"):
        browser.get("about:blank")
        browser.execute_script((files("keyless.serve") / "static" / "cipher.js").read_text())
    return browser


def image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def key_arrays(key):
    """One image's key as the page's key object: name -> list of ints (or None)."""
    if isinstance(key, PixelKey):
        return {"codes": key.codes[0].flatten().tolist()}
    if isinstance(key, ScrambledKey):
        return {**key_arrays(key.pixel), "positions": key.positions[0].tolist()}
    positions = key.positions[0].tolist() if key.positions is not None else None
    return {"mask": key.mask[0].flatten().tolist(), "perm": key.perm[0].flatten().tolist(),
            "positions": positions}  # fmt: skip


def library_key(cipher, arrays):
    """The inverse of :func:`key_arrays`: the page's key as a keyless key (validated)."""
    if "codes" in arrays:
        pixel = PixelKey(torch.tensor(arrays["codes"], dtype=torch.uint8).view(1, SIZE, SIZE))
        if "positions" not in arrays:
            return pixel
        return ScrambledKey(pixel, torch.tensor([arrays["positions"]], dtype=torch.int32))
    symbols = cipher.symbols_per_block()
    mask = torch.tensor(arrays["mask"], dtype=torch.uint8).view(1, -1, symbols)
    perm = torch.tensor(arrays["perm"], dtype=torch.int16).view(1, -1, symbols)
    positions = arrays["positions"]
    key = BlockKey(mask, perm, None if positions is None else torch.tensor([positions]).int())
    return BlockKey.from_bytes(key.to_bytes())  # checks that every order is a permutation


ENCRYPT = """
const [settings, pixels, h, w, arrays] = arguments;
const cipher = keylessCipher.create(settings);
const key = {};
for (const [name, values] of Object.entries(arrays)) {
  key[name] = values === null ? null
    : ["codes", "mask"].includes(name) ? Uint8Array.from(values) : Int32Array.from(values);
}
return Array.from(cipher.encrypt(Uint8Array.from(pixels), h, w, key));
"""
KEYGEN = """
const key = keylessCipher.create(arguments[0]).keygen(arguments[1], arguments[2]);
return Object.fromEntries(Object.entries(key).map(([n, v]) => [n, v && Array.from(v)]));
"""


def page_encrypt(page, cipher, plain, arrays):
    values = plain.flatten().tolist()
    out = page.execute_script(ENCRYPT, cipher.settings(), values, SIZE, SIZE, arrays)
    return np.array(out, dtype=np.uint8).reshape(plain.shape)


def test_the_page_makes_every_registered_cipher():
    assert {s["name"] for s in SETTINGS} == set(list_ciphers())


@pytest.mark.parametrize("settings", SETTINGS, ids=IDS)
def test_the_page_encrypts_as_the_library_under_the_same_key(page, settings):
    cipher = cipher_from_settings(settings)
    for seed in range(3):
        plain = image(seed)
        key = cipher.keygen(1, (SIZE, SIZE), SeedSource(seed))
        expected = cipher.encrypt(plain, key)
        assert not np.array_equal(expected, plain)
        assert page_encrypt(page, cipher, plain, key_arrays(key)).tobytes() == expected.tobytes()


@pytest.mark.parametrize("settings", SETTINGS, ids=IDS)
def test_the_keys_the_page_draws_are_keys_of_the_cipher(page, settings):
    """A page key is a valid library key that encrypts to the page's bytes, decrypts back, and
    keeps the cipher's key invariant (a key outside the variant's key set would change it)."""
    cipher, plain = cipher_from_settings(settings), image()
    arrays = page.execute_script(KEYGEN, cipher.settings(), SIZE, SIZE)
    key = library_key(cipher, arrays)
    ciphertext = page_encrypt(page, cipher, plain, arrays)
    assert ciphertext.tobytes() == cipher.encrypt(plain, key).tobytes()
    assert np.array_equal(cipher.decrypt(ciphertext, key), plain)
    assert not np.array_equal(ciphertext, plain)
    both = torch.from_numpy(np.stack([plain, ciphertext]))
    invariant = cipher.key_invariant(both)
    assert torch.equal(invariant[0], invariant[1])
    if "codes" in arrays:
        inverted = PixelKey(key[0].codes if isinstance(key, PixelKey) else key.pixel.codes).inverted
        if settings.get("np_per") == "pixel":  # one bit for a pixel's three values
            assert bool((inverted.all(-1) | ~inverted.any(-1)).all())
        if settings.get("np_mode") == "balanced":  # exactly half of the values inverted
            assert int(inverted.sum()) == 3 * SIZE * SIZE // 2
    assert arrays != page.execute_script(KEYGEN, cipher.settings(), SIZE, SIZE)  # fresh each time


def test_the_page_adds_the_owners_noise(page):
    """With ``noise``, the page adds Gaussian noise of that standard deviation (grey levels)
    before encrypting, as the owner's ``obscure`` does; without, the image stays as it is."""
    grey = np.full((64, 64, 3), 128, np.uint8).flatten().tolist()
    script = """
    const cipher = keylessCipher.create(arguments[0]);
    return Array.from(cipher.obscure(Uint8Array.from(arguments[1])));
    """
    noisy = np.array(page.execute_script(script, create_cipher("pe", noise=4.0).settings(), grey))
    difference = noisy - 128.0
    assert abs(difference.mean()) < 0.2 and 3.8 < difference.std() < 4.2
    assert page.execute_script(script, create_cipher("pe").settings(), grey) == grey


def test_the_page_refuses_a_cipher_it_does_not_know(page):
    script = "try { keylessCipher.create(arguments[0]); } catch (e) { return e.message; }"
    message = page.execute_script(script, {"name": "rot13"})
    assert message.startswith("the served cipher rot13 is not one this page makes (pe, ")
    message = page.execute_script(script, {"name": "pe", "rounds": 3})
    assert message == "cipher pe has options this page does not know: rounds"
