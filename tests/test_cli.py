import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.data import read_image


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    for name in ("cat/a", "cat/b", "dog/c"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(
            f"{folder / name}.png"
        )
    return folder


def pixels(folder):
    return {p.relative_to(folder).as_posix(): read_image(p) for p in sorted(folder.rglob("*.png"))}


def same_pixels(a, b):
    """Per file of two folders with the same file names: are the pixels equal?"""
    left, right = pixels(a), pixels(b)
    assert left.keys() == right.keys()
    return [np.array_equal(left[k], right[k]) for k in left]


def test_master_key_round_trip_restores_every_file(tmp_path, photos):
    assert run("keygen", "--out", tmp_path / "m.key")[0] == 0
    code, out, _ = run(
        "encrypt", photos, "--out", tmp_path / "enc", "--master-key", tmp_path / "m.key"
    )
    assert code == 0 and "3 written" in out
    assert not any(same_pixels(photos, tmp_path / "enc"))
    key = ("--master-key", tmp_path / "m.key")
    assert run("decrypt", tmp_path / "enc", "--out", tmp_path / "dec", *key)[0] == 0
    assert all(same_pixels(photos, tmp_path / "dec"))


def test_seed_reproducible_common_key_and_rerun_skips(tmp_path, photos):
    run("encrypt", photos, "--out", tmp_path / "s1", "--seed", 4)
    run("encrypt", photos, "--out", tmp_path / "s2", "--seed", 4)
    assert all(same_pixels(tmp_path / "s1", tmp_path / "s2"))
    code, out, _ = run("encrypt", photos, "--out", tmp_path / "s1", "--seed", 4)
    assert code == 0 and "0 written, 3 already done" in out
    run("encrypt", photos, "--out", tmp_path / "c", "--common-key", tmp_path / "common.key")
    run(
        "decrypt", tmp_path / "c", "--out", tmp_path / "cd", "--common-key", tmp_path / "common.key"
    )
    assert all(same_pixels(photos, tmp_path / "cd"))


def test_independent_keys_cannot_be_decrypted_and_differ(tmp_path, photos):
    run("encrypt", photos, "--out", tmp_path / "a")
    run("encrypt", photos, "--out", tmp_path / "b")
    assert not any(same_pixels(tmp_path / "a", tmp_path / "b"))
    code, _, err = run("decrypt", tmp_path / "a", "--out", tmp_path / "d")
    assert code == 2 and "exactly one of" in err


def test_npz_encrypt_decrypt(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {k: rng.integers(0, 256, (4, 5, 5, 3), dtype=np.uint8) for k in ("x_train", "x_test")}
    arrays |= {"y_train": np.arange(4, dtype=np.uint8), "y_test": np.arange(4, dtype=np.uint8)}
    np.savez(tmp_path / "d.npz", **arrays)
    run("keygen", "--out", tmp_path / "m.key")
    assert (
        run(
            "encrypt",
            tmp_path / "d.npz",
            "--out",
            tmp_path / "e",
            "--master-key",
            tmp_path / "m.key",
        )[0]
        == 0
    )
    enc = np.load(tmp_path / "e" / "d.npz")
    assert not np.array_equal(enc["x_train"], arrays["x_train"])
    assert np.array_equal(enc["y_train"], arrays["y_train"])
    run(
        "decrypt",
        tmp_path / "e" / "d.npz",
        "--out",
        tmp_path / "p",
        "--master-key",
        tmp_path / "m.key",
    )
    dec = np.load(tmp_path / "p" / "d.npz")
    assert all(np.array_equal(dec[k], arrays[k]) for k in arrays)


def test_fold_and_keygen_refuses_overwrite(tmp_path, photos):
    assert run("fold", photos, "--out", tmp_path / "f")[0] == 0
    assert max(int(a.max()) for a in pixels(tmp_path / "f").values()) <= 254
    run("keygen", "--out", tmp_path / "k", "--kind", "common", "--size", "9x7")
    code, _, err = run("keygen", "--out", tmp_path / "k")
    assert code == 3 and "refusing to overwrite" in err


def test_demo_writes_grid(tmp_path):
    code, _out, _ = run("demo", "--out", tmp_path / "grid.png")
    assert code == 0 and Image.open(tmp_path / "grid.png").size[0] > 4 * 96


def _bad_inputs(folder):
    """Each bad input of the issue, with the words its error message must contain."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    good = folder / "good.png"
    Image.fromarray(rgb).save(good)
    data = good.read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "text.png").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), "RGBA").save(
        folder / "rgba.png"
    )
    Image.fromarray(rng.integers(0, 65535, (8, 8), dtype=np.uint16)).save(folder / "deep.png")
    Image.new("RGB", (300, 300)).save(folder / "huge.png")
    np.savez(folder / "noarrays.npz", a=np.zeros(3))
    return {
        "truncated.png": "truncated",
        "text.png": "not an image",
        "empty.png": "empty file",
        "rgba.png": "alpha channel",
        "deep.png": "more than 8 bits",
        "huge.png": "exceeds the limit",
        "noarrays.npz": "lacks x_train",
        "missing.png": "no such file",
    }


def test_bad_inputs_fail_alone_with_one_line_each(tmp_path):
    folder = tmp_path / "in"
    expected = _bad_inputs(folder)
    names = [folder / n for n in expected] + [folder / "good.png"]
    code, out, err = run("encrypt", *names, "--out", tmp_path / "out", "--max-pixels", 10_000)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("keyless: error:")]
    for name, words in expected.items():
        assert any(name in line and words in line for line in lines), (name, err)
    assert "Traceback" not in err and len(lines) == len(expected)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "good.png"
    ]  # nothing half-written
    assert "1 written" in out


def test_greyscale_and_palette_are_converted(tmp_path):
    Image.new("L", (4, 4), 90).save(tmp_path / "grey.png")
    Image.new("RGB", (4, 4), (10, 20, 30)).convert("P").save(tmp_path / "pal.png")
    code, out, _ = run(
        "encrypt", tmp_path / "grey.png", tmp_path / "pal.png", "--out", tmp_path / "o", "--seed", 1
    )
    assert code == 0 and "2 written" in out
    run("decrypt", tmp_path / "o", "--out", tmp_path / "d", "--seed", 1)
    assert (read_image(tmp_path / "d" / "grey.png") == 90).all()
    palette_rgb = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "d" / "pal.png"), palette_rgb)


@pytest.mark.parametrize("cipher", ["le", "ele", "etc"])
def test_block_ciphers_round_trip_through_the_cli(tmp_path, cipher):
    rng = np.random.default_rng(1)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    flags = ("--cipher", cipher, "--block-size", 2)
    run("keygen", "--out", tmp_path / "m.key")
    for mode, key in (("master", ("--master-key", tmp_path / "m.key")),
                      ("common", ("--common-key", tmp_path / "c.key"))):  # fmt: skip
        code, _, err = run("encrypt", folder, "--out", tmp_path / f"e-{mode}", *key, *flags)
        assert code == 0, err
        assert not any(same_pixels(folder, tmp_path / f"e-{mode}"))
        assert (
            run("decrypt", tmp_path / f"e-{mode}", "--out", tmp_path / f"d-{mode}", *key, *flags)[0]
            == 0
        )
        assert all(same_pixels(folder, tmp_path / f"d-{mode}"))
    code, _, err = run(
        "encrypt", folder, "--out", tmp_path / "x", "--cipher", cipher, "--np-mode", "balanced"
    )
    assert code == 2 and "--np-mode: not an option of cipher" in err
    code, _, err = run(
        "encrypt", folder, "--out", tmp_path / "y", "--cipher", cipher, "--block-size", 5
    )
    assert code == 2 and "divisible by the block size 5" in err
