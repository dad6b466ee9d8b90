import torch
from torch import nn

from keyless.augment import shift
from keyless.cipher import PixelCipher
from keyless.data import ImageSet
from keyless.evaluate import accuracy, evaluate, predict
from keyless.keys import SeedSource


class PixelSum(nn.Module):
    """A model whose logits depend on where each pixel is (so flips and shifts change them)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(8 * 8 * 3, 5, generator=torch.Generator().manual_seed(0))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().flatten(1) @ self.weight


def test_tta_is_the_weighted_mean_over_mirror_and_one_pixel_shifts():
    images = torch.randint(0, 256, (7, 8, 8, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))  # fmt: skip
    model = PixelSum()
    plain = predict(model, images, precision="fp32", batch_size=3)
    torch.testing.assert_close(plain, model(images).detach())

    def both(x):
        return (model(x) + model(x.flip(2))) / 2

    expected = both(images) / 2 + (both(shift(images, -1, -1)) + both(shift(images, 1, 1))) / 4
    tta = predict(model, images, tta=True, precision="fp32", batch_size=3)
    # logits of about +-1000 summed in another order: absolute rounding, not relative
    torch.testing.assert_close(tta, expected.detach(), rtol=1e-5, atol=1e-2)
    assert not torch.allclose(tta, plain)


def test_evaluate_reports_each_test_set_with_and_without_tta():
    images = torch.randint(0, 256, (30, 8, 8, 3), dtype=torch.uint8)
    labels = torch.randint(0, 5, (30,))
    model = PixelSum()
    results = evaluate(model, ImageSet(images, labels, list("abcde")), PixelCipher(),
                       SeedSource(0), precision="fp32")  # fmt: skip
    assert results.keys() == {"plain", "plain_tta", "fresh_key", "fresh_key_tta"}
    assert results["plain"] == accuracy(predict(model, images, precision="fp32"), labels)
    tta = predict(model, images, tta=True, precision="fp32")
    assert results["plain_tta"] == accuracy(tta, labels)


def test_evaluate_scores_the_fresh_key_and_common_key_sets_on_ciphertexts():
    images = torch.randint(0, 256, (30, 8, 8, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(2))  # fmt: skip
    model, cipher = PixelSum(), PixelCipher()
    labels = model(images).argmax(1)  # every plain image right
    common = cipher.keygen(1, (8, 8), SeedSource(9))
    results = evaluate(model, ImageSet(images, labels, list("abcde")), cipher, SeedSource(0),
                       common, tta=False, precision="fp32")  # fmt: skip
    assert results.keys() == {"plain", "fresh_key", "common_key"} and results["plain"] == 1.0
    fresh = cipher.encrypt_fresh(images, SeedSource(0))[0]
    for name, encrypted in (("fresh_key", fresh), ("common_key", cipher.encrypt(images, common))):
        expected = accuracy(predict(model, encrypted, precision="fp32"), labels)
        assert results[name] == expected < 0.9, name


def test_evaluate_shows_a_progress_bar_per_test_set_only_when_asked(capsys):
    images = torch.randint(0, 256, (30, 8, 8, 3), dtype=torch.uint8)
    test = ImageSet(images, torch.randint(0, 5, (30,)), list("abcde"))
    evaluate(PixelSum(), test, PixelCipher(), SeedSource(0), precision="fp32")
    assert capsys.readouterr().err == ""
    evaluate(PixelSum(), test, PixelCipher(), SeedSource(0), precision="fp32", progress=True)
    err = capsys.readouterr().err
    assert "test plain" in err and "test fresh_key" in err
