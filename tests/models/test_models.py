import re

import pytest
import torch
from torch import nn

from keyless.cipher import (
    ExtendedLearnableCipher,
    LearnableCipher,
    PixelCipher,
    ScrambledPixelCipher,
    create_cipher,
    list_ciphers,
)
from keyless.errors import UnknownNameError
from keyless.models import (
    ADAPTERS,
    STEMS,
    BagNet,
    BlockAdaptationNetwork,
    InvariantInput,
    LearnedInput,
    NibbleInput,
    SplineInput,
    create_model,
    list_models,
)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("adapt", ["none", "pixel", "block"])
def test_every_model_classifies_uint8_images(name, adapt):
    kwargs = {"depth": 10} if name == "densenet" else {}
    model = create_model(name, num_classes=7, stem="plain", adapt=adapt, **kwargs)
    images = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    model.init_from_data(images)
    assert model.eval()(images).shape == (2, 7)


@pytest.mark.parametrize("stem", ["invariant", "spline"])
def test_invariant_stems_give_identical_logits_for_plain_and_encrypted(stem):
    torch.manual_seed(0)
    model = create_model("fastnet", num_classes=10, stem=stem, widths=(16, 32, 32)).eval()
    plain = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    model.init_from_data(plain)
    cipher = PixelCipher()
    encrypted = cipher.encrypt(plain, cipher.keygen(8, (32, 32)))
    with torch.no_grad():
        assert torch.equal(model(plain), model(encrypted))


@pytest.mark.parametrize("m", [4, 8, 16])
@pytest.mark.parametrize("noise", [0.0, 24.0])
@pytest.mark.parametrize("attention", [0, 1])
def test_bagnet_gives_identical_logits_for_a_plain_image_and_two_scrambled_encryptions(
    m, noise, attention
):
    torch.manual_seed(0)
    cipher = ScrambledPixelCipher(block_size=m, noise=noise)
    model = create_model("bagnet", 10, "key-invariant", "none", m, cipher, widths=(8, 16, 16),
                         attention_layers=attention)  # fmt: skip
    model.eval()
    plain = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    noisy = cipher.obscure(plain)  # the owner's noise: the plain image it encrypts
    first, second = (cipher.encrypt(noisy, cipher.keygen(4, (32, 32))) for _ in range(2))
    with torch.no_grad():
        logits = model(noisy)
        assert torch.equal(model(first), logits) and torch.equal(model(second), logits)
        # a pixel moved inside its block changes the bag: the model is not blind
        assert not torch.equal(model(noisy.roll(1, dims=2)), logits)


def test_bagnet_attention_lets_blocks_read_each_other_but_not_where_they_sit():
    torch.manual_seed(0)
    model = BagNet(in_channels=3, block_size=8, widths=(8, 16, 16), attention_layers=1).eval()
    x = torch.randn(2, 3, 32, 32)
    moved = x.roll((8, -16), dims=(2, 3))  # every 8 x 8 block moved, none changed
    with torch.no_grad():
        logits = model(x)
        assert torch.allclose(model(moved), logits, atol=1e-5)
        model.mixer = nn.Identity()  # the same encoder and head without attention
        assert not torch.allclose(model(x), logits, atol=1e-3)


@pytest.mark.parametrize("name", list_ciphers())
def test_the_key_invariant_stem_gives_identical_logits_for_every_cipher(name):
    torch.manual_seed(0)
    cipher = create_cipher(name, noise=6.0) if name.startswith("pe") else create_cipher(name)
    block = getattr(cipher, "block_size", 4)
    model = create_model("bagnet", 10, "key-invariant", "none", block, cipher, widths=(8, 8, 8))
    plain = cipher.obscure(torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8))
    first, second = (cipher.encrypt(plain, cipher.keygen(3, (32, 32))) for _ in range(2))
    with torch.no_grad():
        logits = model.eval()(plain)
        assert torch.equal(model(first), logits) and torch.equal(model(second), logits)


def test_learned_stem_starts_as_the_sorted_fold_and_stays_key_invariant():
    torch.manual_seed(0)
    plain = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8)
    stem = LearnedInput()
    assert torch.equal(stem(plain), InvariantInput()(plain))  # zero-initialised correction
    nn.init.normal_(stem.correction[-1].weight)  # as if trained
    cipher = PixelCipher()
    encrypted = cipher.encrypt(plain, cipher.keygen(4, (16, 16)))
    with torch.no_grad():
        assert not torch.equal(stem(plain), InvariantInput()(plain))
        assert torch.equal(stem(plain), stem(encrypted))


def test_spline_stem_hinges_each_sorted_fold_value():
    # one pixel (10, 200, 100): folds 10, 55, 100 -> sorted 10, 55, 100
    pixel = torch.tensor([10, 200, 100], dtype=torch.uint8).view(1, 1, 1, 3)
    x = SplineInput()(pixel).view(4, 3)  # knots x sorted values
    span = 127.5 - torch.tensor(SplineInput.knots, dtype=torch.float32)[:, None]
    hinges = x * 32 * span / 127.5 + span / 2  # undo the centring and scaling
    expected = [[10, 55, 100], [0, 23, 68], [0, 0, 36], [0, 0, 4]]
    assert torch.allclose(hinges, torch.tensor(expected, dtype=torch.float32), atol=1e-4)
    assert x.abs().max() <= 2.0


def test_plain_stem_is_not_key_invariant():
    torch.manual_seed(0)
    model = create_model("fastnet", stem="plain", widths=(16, 32, 32)).eval()
    plain = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    cipher = PixelCipher()
    with torch.no_grad():
        assert not torch.equal(
            model(plain), model(cipher.encrypt(plain, cipher.keygen(4, (32, 32))))
        )


def test_unknown_model_and_stem():
    with pytest.raises(UnknownNameError, match="did you mean resnet18"):
        create_model("resnet81")
    with pytest.raises(ValueError, match="stem must be one of"):
        create_model("fastnet", stem="magic")


def test_fastnet_whitening_keeps_its_width_behind_the_adaptation_network():
    model = create_model("fastnet", stem="plain", adapt=True, widths=(8, 8, 8))
    images = torch.randint(0, 256, (64, 32, 32, 3), dtype=torch.uint8)
    model.init_from_data(images)
    assert model.backbone.whiten.out_channels == 24
    with torch.no_grad():
        white = model.backbone.whiten(model.features_in(images)).float()
    # the kept directions are whitened: unit uncentred second moment (airbench's whitening; up
    # to the eps added to eigenvalues); the bias starts at zero
    second_moment = white.transpose(0, 1).reshape(24, -1).square().mean(dim=1)
    assert torch.allclose(second_moment, torch.ones(24), atol=0.05)


def _block_features(images, block_size=4):
    """What the block-wise adaptation network's first 1x1 layer sees: one row per block."""
    x = NibbleInput()(images)
    return nn.PixelUnshuffle(block_size)(x).permute(0, 2, 3, 1).reshape(-1, 6 * block_size**2)


@pytest.mark.parametrize(("cipher", "undoable"), [(LearnableCipher(), True),
                                                  (ExtendedLearnableCipher(), False)])  # fmt: skip
def test_block_adaptation_layer_can_undo_le_but_not_ele(cipher, undoable):
    """One affine 1x1 layer over a block's nibbles maps LE ciphertexts (one key for all blocks)
    exactly onto the plain nibbles; ELE's per-block keys leave no such map."""
    images = torch.randint(0, 256, (40, 16, 16, 3), dtype=torch.uint8)
    key = cipher.keygen(1, (16, 16))
    enc, plain = _block_features(cipher.encrypt(images, key)), _block_features(images)
    design = torch.cat([enc, torch.ones(len(enc), 1)], 1).double()
    solution = torch.linalg.lstsq(design, plain.double()).solution
    residual = (design @ solution - plain).abs().max().item()
    assert (residual < 1e-6) == undoable, residual


def test_block_adaptation_network_shapes():
    model = create_model("fastnet", stem="nibbles", adapt="block", block_size=4, widths=(8, 8, 8))
    images = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    assert model.features_in(images).shape == (2, 3, 16, 16)
    assert model(images).shape == (2, 10)
    with pytest.raises(ValueError, match="adapt must be one of"):
        create_model("fastnet", adapt="magic")


def test_block_adaptation_network_starts_as_the_plain_decoding():
    images = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    adapter = BlockAdaptationNetwork(6, block_size=4).eval()  # fresh BN: mean 0, var 1
    decoded = adapter(NibbleInput()(images))
    expected = (images.permute(0, 3, 1, 2).float() - 127.5) / 68  # (16 hi + lo) / 17, scaled
    assert torch.allclose(decoded, expected, atol=1e-4)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("stem", sorted(STEMS))
@pytest.mark.parametrize("adapt", ADAPTERS)
def test_every_model_stem_and_adaptation_network_trains(name, stem, adapt):
    kwargs = {"depth": 10} if name == "densenet" else {"widths": [8, 16, 16]}
    kwargs = {"width": 8} if name.startswith("resnet18") else kwargs
    if adapt == "block" and STEMS[stem].out_channels not in (3, 6):
        with pytest.raises(ValueError, match="block adaptation takes 3 values or 6 nibbles"):
            create_model(name, num_classes=3, stem=stem, adapt=adapt, **kwargs)
        return
    model = create_model(name, num_classes=3, stem=stem, adapt=adapt, **kwargs)
    side = 16 if name == "fastnet" else 8  # fastnet's three pools need 16; smaller is faster
    images = torch.randint(0, 256, (2, side, side, 3), dtype=torch.uint8)
    model.init_from_data(images)
    logits = model.train()(images)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)  # every trainable parameter is reached
    assert any(p.grad.abs().sum() > 0 for p in trainable)


@pytest.mark.parametrize("size", [32, 96])
def test_fastnet_takes_cifar_and_stl10_sizes(size):
    model = create_model("fastnet", num_classes=10, stem="invariant", widths=(8, 16, 16)).eval()
    images = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    model.init_from_data(images)
    with torch.no_grad():
        assert model(images).shape == (2, 10)


@pytest.mark.parametrize("depth", [1, 2])
def test_residual_fastnet_adds_each_groups_input_back_before_its_last_activation(depth):
    torch.manual_seed(0)
    kwargs = {"widths": (8, 16, 16), "residual": True, "residual_depth": depth}
    model = create_model("fastnet", stem="plain", **kwargs).eval()
    group = model.backbone.body[1]
    layers = [nn.Conv2d, nn.BatchNorm2d, nn.GELU, nn.Conv2d, nn.BatchNorm2d][: 3 * depth - 1]
    assert [type(m) for m in group.inner] == layers  # the last GELU after the sum (June 2024)
    x = torch.randn(2, 24, 32, 32)
    with torch.no_grad():
        down = group.down(x)
        assert torch.allclose(group(x), nn.functional.gelu(down + group.inner(down)))
        nn.init.zeros_(group.inner[-2].weight)  # a zero branch: the group is its first layer
        assert torch.allclose(group(x), nn.functional.gelu(down))
    images = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert model(images).shape == (2, 10)


@pytest.mark.parametrize(
    ("recipe_name", "options", "says"),
    [
        ("paper", {"width": 513}, "width: a ResNet's first stage takes 1 to 512, got 513"),
        ("imagenet", {"width": 0}, "width: a ResNet's first stage takes 1 to 512, got 0"),
        ("bag", {"widths": [16, 5000]}, "widths: bagnet takes 1 to 8, each 1 to 4096"),
        ("bag", {"widths": [16, 30], "attention_layers": 1}, "divisible by 4, got 30"),
        ("bag", {"attention_layers": 65}, "attention_layers: 0 to 64, got 65"),
        ("fast", {"whiten_kernel": 10**6}, "whiten_kernel: 1 to 8 pixels, got 1000000"),
    ],
)
def test_model_sizes_out_of_bounds_are_one_line_before_any_allocation(recipe_name, options, says):
    from keyless.errors import ConfigError
    from keyless.runs import build_model
    from keyless.train import recipe

    with pytest.raises(ConfigError, match=re.escape(says)):
        build_model(recipe(recipe_name).with_model_options(**options), 10)


def test_densenet_depth_and_growth_are_bounded():
    with pytest.raises(ValueError, match="depth 10 to 1000 and growth 1 to 256, got depth 10000"):
        create_model("densenet", depth=10000)
