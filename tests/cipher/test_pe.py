import hashlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from keyless.cipher import NUM_CODES, PERMUTATIONS, PixelCipher, PixelKey, _kernel, create_cipher
from keyless.cipher._kernel import _apply_torch
from keyless.cipher._pe import DECRYPT_TABLE, ENCRYPT_TABLE
from keyless.errors import KeyMaterialError, UnknownNameError
from keyless.invariant import sorted_fold
from keyless.keys import SeedSource
from tests.kernel_check import check_cipher

VARIANTS = [
    PixelCipher(),
    PixelCipher(shuffle=False),
    PixelCipher(np_per="pixel"),
    PixelCipher(np_mode="balanced"),
]
ALPHA = 1e-3  # level of every statistical test below


@st.composite
def batches(draw, max_side=9):
    n = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen), seed


@pytest.mark.parametrize("cipher", VARIANTS, ids=lambda c: f"{c.shuffle}-{c.np_mode}-{c.np_per}")
@given(batch=batches())
def test_kernel_invariants_and_round_trip(cipher, batch):
    images, seed = batch
    check_cipher(cipher, images, SeedSource(seed))


@given(batch=batches())
def test_sorted_fold_is_key_invariant(batch):
    images, seed = batch
    cipher = PixelCipher()
    key = cipher.keygen(len(images), images.shape[1:3], SeedSource(seed))
    assert torch.equal(sorted_fold(cipher.encrypt(images, key)), sorted_fold(images))


@given(batch=batches(), data=st.data())
def test_encryption_commutes_with_flip_and_crop(batch, data):
    images, seed = batch
    cipher = PixelCipher()
    key = cipher.keygen(len(images), images.shape[1:3], SeedSource(seed))
    encrypted = cipher.encrypt(images, key)
    flipped = PixelKey(key.codes.flip(2))
    assert torch.equal(cipher.encrypt(images.flip(2), flipped), encrypted.flip(2))
    h, w = images.shape[1:3]
    top, left = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    crop = (slice(None), slice(top, h), slice(left, w))
    assert torch.equal(cipher.encrypt(images[crop], PixelKey(key.codes[crop])), encrypted[crop])


@given(batch=batches())
def test_rekey_decrypts_with_composed_key(batch):
    images, seed = batch
    cipher = PixelCipher()
    source = SeedSource(seed)
    key = cipher.keygen(len(images), images.shape[1:3], source)
    again, fresh = cipher.rekey(cipher.encrypt(images, key), source)
    assert torch.equal(cipher.decrypt(again, cipher.compose(key, fresh)), images)


def test_rekeyed_pixel_is_distributed_like_a_fresh_encryption():
    cipher = PixelCipher()
    plain = torch.tensor([10, 60, 200], dtype=torch.uint8).expand(1, 128, 128, 3).contiguous()
    encrypted = cipher.encrypt(plain, cipher.keygen(1, (128, 128), SeedSource(1)))
    rekeyed, _ = cipher.rekey(encrypted, SeedSource(2))
    fresh = cipher.encrypt(plain, cipher.keygen(1, (128, 128), SeedSource(3)))
    forms = cipher.encrypt(  # the 48 possible encrypted forms of the pixel
        plain[:, :1, :1].expand(1, 48, 1, 3).contiguous(),
        PixelKey(torch.arange(48, dtype=torch.uint8).view(1, 48, 1)),
    )
    index = {f: i for i, f in enumerate(sorted({tuple(v) for v in forms.view(-1, 3).tolist()}))}
    assert len(index) == 48

    def form(x):  # each pixel's form, 0..47
        return np.array([index[tuple(v)] for v in x.view(-1, 3).tolist()])

    table = np.stack([np.bincount(form(x), minlength=48) for x in (rekeyed, fresh)])
    assert stats.chi2_contingency(table).pvalue > ALPHA
    assert stats.chisquare(table[0]).pvalue > ALPHA
    # and the new form forgets the old one (a rekey that did nothing would be diagonal)
    pairs = np.zeros((48, 48))
    np.add.at(pairs, (form(encrypted), form(rekeyed)), 1)
    assert stats.chi2_contingency(pairs).pvalue > ALPHA


def test_key_bits_balanced_and_codes_uniform():
    # seeded: a statistical test on a fresh CSPRNG draw would fail one CI run in a few hundred
    key = PixelCipher().keygen(64, (32, 32), SeedSource(0))
    bits = key.inverted.numpy()
    assert stats.binomtest(int(bits.sum()), bits.size).pvalue > ALPHA
    counts = np.bincount(key.perm.numpy().ravel(), minlength=6)
    assert stats.chisquare(counts).pvalue > ALPHA
    assert (
        stats.chisquare(np.bincount(key.codes.numpy().ravel(), minlength=NUM_CODES)).pvalue > ALPHA
    )


def test_variants_draw_from_their_key_sets():
    size, source = (16, 16), SeedSource(0)
    assert PixelCipher(shuffle=False).keygen(4, size, source).perm.max() == 0
    per_pixel = PixelCipher(np_per="pixel").keygen(4, size, source).codes % 8
    assert set(per_pixel.unique().tolist()) == {0, 7}
    balanced = PixelCipher(np_mode="balanced").keygen(3, (5, 5), source).inverted
    assert balanced.view(3, -1).sum(1).tolist() == [37, 37, 37]  # floor(75 / 2)


def test_paper_order_np_first_then_shuffle():
    key = PixelKey.from_parts(torch.tensor([[[[True, False, False]]]]), torch.tensor([[[3]]]))
    pixel = torch.tensor([[[[10, 20, 30]]]], dtype=torch.uint8)
    # NP inverts R: (245, 20, 30); shuffle code 3 is GBR: (20, 30, 245)
    assert PixelCipher().encrypt(pixel, key).view(-1).tolist() == [20, 30, 245]
    assert [("RGB"[a] + "RGB"[b] + "RGB"[c]) for a, b, c in PERMUTATIONS] == [
        "RGB",
        "RBG",
        "GRB",
        "GBR",
        "BRG",
        "BGR",
    ]


def test_numba_kernel_agrees_with_torch_reference():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 7, 5, 3), dtype=torch.uint8, generator=gen)
    key = PixelCipher().keygen(3, (7, 5), SeedSource(0))
    for table in (ENCRYPT_TABLE, DECRYPT_TABLE):
        from keyless.cipher._kernel import apply_transforms

        reference = _apply_torch(x.view(-1, 3), key.codes.view(-1), torch.from_numpy(table))
        assert torch.equal(apply_transforms(x, key.codes, table), reference.view(x.shape))


def _digest(key: PixelKey) -> str:
    return hashlib.sha256(key.codes.numpy().tobytes()).hexdigest()


def test_seeded_keys_stay_bit_identical_across_versions():
    """Uploads made with --keys seed or master-key decrypt only if keys never change: digests
    of keys drawn by an earlier keyless (one per image id; 24 photos in one parallel draw)."""
    one = PixelCipher().keygen(1, (224, 224), SeedSource(7), ["photos/cat/1"])
    many = PixelCipher().keygen(24, (224, 224), SeedSource(7))
    assert _digest(one) == "43c6f5ebbf68e6c9822877e89c279d65133faa0e4dda2451ab76b352f4ca3b00"
    assert _digest(many) == "dadd1334d02cd3f3789b013be3a094a167c5f265d951fc1945a05fc1abbce98f"


def test_serial_and_parallel_kernels_draw_the_same_keys(monkeypatch):
    def draw():
        return PixelCipher().keygen(24, (224, 224), SeedSource(3)).codes

    assert _kernel._parallel(24 * 224 * 224)
    parallel = draw()
    monkeypatch.setattr(_kernel, "_serial", True)  # as in an encryption worker process
    assert not _kernel._parallel(24 * 224 * 224)
    assert torch.equal(draw(), parallel)


def test_independent_keys_differ():  # seeds and ids: test_block.py, for every cipher
    cipher, x = PixelCipher(), torch.full((2, 8, 8, 3), 77, dtype=torch.uint8)
    a = cipher.encrypt(x, cipher.keygen(2, (8, 8)))
    b = cipher.encrypt(x, cipher.keygen(2, (8, 8)))
    assert not torch.equal(a, b) and not torch.equal(a[0], a[1])


def test_key_serialisation_round_trip_and_errors(tmp_path):
    key = PixelCipher().keygen(2, (3, 4))
    assert torch.equal(PixelKey.from_bytes(key.to_bytes()).codes, key.codes)
    key.save(tmp_path / "k")
    assert torch.equal(PixelKey.load(tmp_path / "k").codes, key.codes)
    with pytest.raises(KeyMaterialError, match="not a keyless pixel key"):
        PixelKey.from_bytes(b"garbage")
    with pytest.raises(KeyMaterialError, match="does not fit"):
        PixelCipher().encrypt(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), key)


def test_key_space_bits():
    assert PixelCipher().key_space_bits(32, 32) == pytest.approx(3072 + 1024 * math.log2(6))
    assert round(PixelCipher().key_space_bits(32, 32)) == 5719
    assert PixelCipher(shuffle=False).key_space_bits(32, 32) == 3072


def test_registry_and_bad_options():
    assert isinstance(create_cipher("pe", shuffle=None), PixelCipher)
    with pytest.raises(UnknownNameError, match="did you mean pe"):
        create_cipher("pee")
    with pytest.raises(ValueError, match="np_mode"):
        PixelCipher(np_mode="dice")
