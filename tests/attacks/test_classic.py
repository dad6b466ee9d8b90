import json
import math

import pytest
import torch

from keyless.attacks import (
    GANAttack,
    HelperImageAttack,
    ITNAttack,
    fr_advanced_attack,
    fr_attack,
    keyspace_bits,
    similarity,
)
from keyless.cipher import EtCCipher, PixelCipher
from keyless.errors import ExitStatus
from keyless.keys import SeedSource


def smooth_images(n=4, size=24, seed=0):
    """Colour gradients: neighbouring pixels are close, the regime FR-advanced relies on."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    base = torch.rand(n, 1, 1, 3, generator=gen) * 120 + 60
    slope = torch.rand(n, 1, 1, 3, generator=gen) * 60 - 30
    images = base + slope * (ramp[None, :, None, None] + ramp[None, None, :, None])
    return images.clamp(0, 255).round().to(torch.uint8)


def test_fr_advanced_beats_fr_in_psnr_on_smooth_images():
    cipher, x = PixelCipher(), smooth_images()
    encrypted = cipher.encrypt(x, cipher.keygen(4, (24, 24), SeedSource(3)))
    basic = similarity(fr_attack(encrypted), x)["psnr_mean"]
    advanced = similarity(fr_advanced_attack(encrypted), x)["psnr_mean"]
    assert advanced > basic + 3, (basic, advanced)


def test_helper_attack_recovers_common_key_images_exactly():
    cipher, x = PixelCipher(), smooth_images()
    common = cipher.keygen(1, (24, 24))
    attack = HelperImageAttack(lambda helper: cipher.encrypt(helper, common))
    recovered = attack.reconstruct(cipher.encrypt(x, common))
    assert torch.equal(recovered, x)
    assert similarity(recovered, x)["ssim_mean"] == pytest.approx(1.0)


def test_helper_attack_fails_on_independent_keys():
    cipher, x = PixelCipher(), smooth_images()
    victims = cipher.encrypt(x, cipher.keygen(4, (24, 24)))
    attack = HelperImageAttack(lambda helper: cipher.encrypt(helper, cipher.keygen(1, (24, 24))))
    assert similarity(attack.reconstruct(victims), x)["ssim_mean"] < 0.5


@pytest.mark.parametrize(
    ("cipher", "keys"),
    [
        (PixelCipher(), 48 ** (4 * 6)),  # per pixel: 6 channel orders x 2**3 negations
        (PixelCipher(shuffle=False), 2 ** (3 * 4 * 6)),  # negations only
        (EtCCipher(block_size=2), math.factorial(6) * 96**6),  # 6 blocks: order, 96 moves each
    ],
    ids=["pe", "pe-no-shuffle", "etc"],
)
def test_keyspace_counts_the_keys_of_one_image_of_the_given_size(cipher, keys):
    result = keyspace_bits(cipher, 4, 6)  # not square, and not the ciphers' defaults
    assert result["bits"] == pytest.approx(math.log2(keys))
    assert "a found key opens one image only" in result["remark"]


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["pixel", "unet"])
def test_itn_lowers_its_training_loss(generator):
    torch.manual_seed(0)
    attack = ITNAttack(generator, epochs=6, batch_size=16, lr=3e-3).fit(
        smooth_images(32, 12), SeedSource(0)
    )
    assert attack.losses[-1] < 0.8 * attack.losses[0], attack.losses
    victims = PixelCipher().encrypt(smooth_images(2, 12, seed=1), PixelCipher().keygen(2, (12, 12)))
    assert attack.reconstruct(victims).shape == (2, 12, 12, 3)


@pytest.mark.slow
def test_invariant_attack_beats_the_fold_it_learns_from():
    torch.manual_seed(0)
    cipher = PixelCipher()
    attack = ITNAttack("unet", cipher, epochs=20, batch_size=16, lr=3e-3, invariant=True,
                       loss="l1", levels=3, width=8, precision="fp32")  # fmt: skip
    attack.fit(smooth_images(64, 12), SeedSource(0))
    plain = smooth_images(16, 12, seed=1)
    victims = cipher.encrypt_fresh(plain, SeedSource(2))[0]
    learned = similarity(attack.reconstruct(victims), plain)["ssim_mean"]
    assert learned > similarity(fr_attack(victims), plain)["ssim_mean"] + 0.1
    # two fresh encryptions of the same images: identical guesses (the invariant is all it sees)
    again = cipher.encrypt_fresh(plain, SeedSource(3))[0]
    assert torch.equal(attack.reconstruct(victims), attack.reconstruct(again))


def test_ssim_loss_matches_scikit_image_on_average():
    from keyless.attacks import ssim_loss

    a, b = smooth_images(4, 24, seed=4), smooth_images(4, 24, seed=5)
    noisy = a.float() + torch.randn(a.shape, generator=torch.Generator().manual_seed(0)) * 20
    noisy = noisy.clamp(0, 255).round().to(torch.uint8)
    as_float = [x.permute(0, 3, 1, 2).double() / 255 for x in (a, b, noisy)]
    for other, image in [(as_float[1], b), (as_float[2], noisy)]:
        expected = similarity(image, a)["ssim_mean"]
        assert 1 - ssim_loss(other, as_float[0]).item() == pytest.approx(expected, abs=0.02)
    assert ssim_loss(as_float[0], as_float[0]).item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.slow
def test_gan_attack_trains_and_reconstructs():
    torch.manual_seed(0)
    cipher = PixelCipher()
    victims = cipher.encrypt(smooth_images(16, 12, seed=2), cipher.keygen(16, (12, 12)))
    attack = GANAttack(epochs=2, batch_size=8)
    before = attack.reconstruct(victims)
    attack.fit(smooth_images(16, 12), victims)
    assert len(attack.losses) == 2 and all(map(math.isfinite, sum(attack.losses, ())))
    after = attack.reconstruct(victims)
    assert after.shape == victims.shape and after.dtype == torch.uint8
    assert not torch.equal(after, victims) and not torch.equal(after, before)  # it learned


@pytest.mark.slow
def test_attack_command_writes_report_and_grid(tmp_path):
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from keyless.cli import main

    x = smooth_images(24, 12).numpy()
    labels = np.zeros(24, np.uint8)
    np.savez(
        tmp_path / "d.npz", x_train=x[:16], y_train=labels[:16], x_test=x[16:], y_test=labels[16:]
    )
    args = ["attack", "--data", str(tmp_path / "d.npz"), "--keys", "common", "--victims", "6",
            "--budget-minutes", "0.01", "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    rows = {r["attack"]: r for r in report["rows"]}
    assert set(rows) == {
        "encrypted image itself",
        "fr",
        "fr-advanced",
        "helper",
        "invariant",
        "itn",
        "itn-unet",
        "gan",
    }
    assert rows["helper"]["ssim_mean"] == pytest.approx(1.0)  # common key: exact recovery
    assert Image.open(tmp_path / "r" / "grid.png").size[0] > 8 * 12
    bad = CliRunner().invoke(
        main, [*args[:-2], "--attacks", "fr,magic", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == ExitStatus.UNKNOWN_NAME and "unknown attack 'magic'" in bad.stderr


@pytest.mark.slow
def test_attack_command_takes_any_registered_cipher(tmp_path, monkeypatch):
    import numpy as np
    from click.testing import CliRunner

    from keyless.attacks import ATTACKS, Attack
    from keyless.cli import main

    class PEOnly(Attack):
        name, ciphers = "pe-only", ("pe",)

        def attack(self, ciphertexts, scenario):
            return ciphertexts, {}

    monkeypatch.setitem(ATTACKS._entries, "pe-only", PEOnly)

    x = smooth_images(12, 12).numpy()
    labels = np.zeros(12, np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x[:8], y_train=labels[:8], x_test=x[8:], y_test=labels[8:])
    args = ["attack", "--data", str(tmp_path / "d.npz"), "--cipher", "etc", "--keys", "common",
            "--attacks", "keyspace,fr,helper,pe-only,itn", "--budget-minutes", "0.005",
            "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (
        report["cipher"] == "etc" and report["keyspace"]["bits"] > 70
    )  # 9 blocks: log2(9!) + 9 log2(96)
    rows = [r["attack"] for r in report["rows"]]
    assert rows == ["encrypted image itself", "fr", "helper", "itn"]
    assert report["rows"][2]["ssim_mean"] == pytest.approx(1.0)  # the common EtC key, found
    assert "pe-only" in report["skipped"] and "Not run: pe-only" in result.stdout


def test_attack_counts_and_image_sizes_out_of_range_are_one_line(tmp_path):
    import numpy as np
    from click.testing import CliRunner

    from keyless.cli import main
    from keyless.errors import InputError

    small = torch.zeros(1, 6, 9, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"^SSIM needs images of at least 7x7 pixels .*, got 6x9$"):
        similarity(small, small)
    x = smooth_images(4, 12).numpy()
    np.savez(tmp_path / "d.npz", x_train=x[:2], y_train=[0, 1], x_test=x[2:], y_test=[0, 1])
    for option in ("--victims", "--attacker-images"):
        data = ["--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "r")]
        result = CliRunner().invoke(main, ["attack", *data, option, "0"])
        assert result.exit_code == 2 and "0 is not in the range x>=1" in result.stderr
    assert not (tmp_path / "r").exists()
