import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.data import read_image
from keyless.errors import ExitStatus

NAMES = ["cat/a.png", "cat/b.png", "dog/c.png"]


def seed(n):
    """The options of the seed key mode with seed ``n``."""
    return ("--keys", "seed", "--seed", n)


def run(*args, code=0):
    """Invoke the CLI, assert its exit status, return (stdout, stderr)."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return result.stdout, result.stderr


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    for name in NAMES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(folder / name)
    return folder


def pixels(folder):
    return {p.relative_to(folder).as_posix(): read_image(p) for p in sorted(folder.rglob("*.png"))}


def same_pixels(a, b):
    """Per file of two folders holding the same, non-empty, file names: are the pixels equal?"""
    left, right = pixels(a), pixels(b)
    assert left and left.keys() == right.keys(), (sorted(left), sorted(right))
    return [np.array_equal(left[k], right[k]) for k in left]


def sorted_fold(image):
    """Per pixel, the sorted FR fold min(p, 255 - p): what any PE key leaves unchanged."""
    image = image.astype(np.int16)
    return np.sort(np.minimum(image, 255 - image), axis=-1)


def test_master_key_round_trip_restores_every_file(tmp_path, photos):
    out, _ = run("keygen", "--out", tmp_path / "m.key")
    assert "wrote master key" in out and (tmp_path / "m.key").is_file()
    key = ("--keys", "master-key", "--key-file", tmp_path / "m.key")
    out, _ = run("encrypt", photos, "--out", tmp_path / "enc", *key)
    assert "3 written, 0 already done, 0 failed" in out
    assert sorted(pixels(tmp_path / "enc")) == NAMES
    assert not any(same_pixels(photos, tmp_path / "enc"))
    run("decrypt", tmp_path / "enc", "--out", tmp_path / "dec", *key)
    assert all(same_pixels(photos, tmp_path / "dec"))
    # plain images again: the owner's only, like keys
    assert (tmp_path / "dec").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "dec").rglob("*.png")} == {0o600}
    run("keygen", "--out", tmp_path / "other.key")
    other = ("--keys", "master-key", "--key-file", tmp_path / "other.key")
    _, err = run(
        "decrypt", tmp_path / "enc", "--out", tmp_path / "wrong", *other, code=ExitStatus.BAD_KEY
    )
    assert err.startswith("keyless: error: ") and "encrypted with another master key" in err
    assert err.count("\n") == 1 and not (tmp_path / "wrong").exists()
    _, err = run(
        "encrypt", photos, "--out", tmp_path / "enc", *other, code=ExitStatus.BAD_KEY
    )  # no mixing
    assert "holds images encrypted with another master key" in err
    # a file or sub-folder of the upload decrypts under its own keys, named as encrypt named it
    run("decrypt", tmp_path / "enc" / "cat" / "a.png", tmp_path / "enc" / "dog", "--out",
        tmp_path / "part", *key)  # fmt: skip
    part = pixels(tmp_path / "part")
    assert sorted(part) == ["cat/a.png", "dog/c.png"]
    assert all(np.array_equal(part[name], read_image(photos / name)) for name in part)
    _, err = run("decrypt", tmp_path / "enc" / "dog", "--out", tmp_path / "w", *seed(0), code=2)
    assert "encrypted with master-key keys, not seed ones" in err and err.count("\n") == 1
    _, err = run("decrypt", tmp_path / "enc", "--out", tmp_path / "w", "--cipher", "le",
                 "--block-size", "1", *key, code=2)  # fmt: skip
    assert "encrypted with cipher pe (" in err and "not le (block_size=1, " in err
    assert not (tmp_path / "w").exists()
    _, err = run("decrypt", tmp_path / "enc" / "cat", "--out", tmp_path / "enc" / "plain", *key,
                 code=2)  # fmt: skip
    assert "inside the encrypted upload" in err and not (tmp_path / "enc" / "plain").exists()
    run("decrypt", tmp_path / "enc" / "cat" / ".." / "dog", "--out", tmp_path / "dots", *key)
    assert all(same_pixels(photos / "dog", tmp_path / "dots" / "dog"))  # ".." walks no folder
    # files moved away from their folder's check value: still decryptable, still unchecked
    (tmp_path / "moved").mkdir()
    (tmp_path / "enc" / "cat" / "a.png").rename(tmp_path / "moved" / "a.png")
    run("decrypt", tmp_path / "moved", "--out", tmp_path / "noise", *other)
    assert not any(same_pixels(tmp_path / "moved", tmp_path / "noise"))


def test_truncated_or_foreign_master_key_files_are_refused(tmp_path, photos):
    run("keygen", "--out", tmp_path / "m.key")
    magic, hexkey = (tmp_path / "m.key").read_text().split()
    for name, text in [("short", f"{magic}\n{hexkey[:40]}\n"), ("magic", f"other\n{hexkey}\n"),
                       ("binary", "\x00\xff" * 40), ("empty", "")]:  # fmt: skip
        (tmp_path / name).write_text(text)
        _, err = run("encrypt", photos, "--out", tmp_path / "o",
                     "--keys", "master-key", "--key-file", tmp_path / name,
                     code=ExitStatus.BAD_KEY)  # fmt: skip
        assert "not a keyless master key file" in err and err.count("\n") == 1


def test_seed_reproducible_decrypts_exactly_and_rerun_skips(tmp_path, photos):
    for name, number in (("s1", 4), ("s2", 4), ("s5", 5)):
        out, _ = run("encrypt", photos, "--out", tmp_path / name, *seed(number))
        assert "3 written" in out
    assert sorted(pixels(tmp_path / "s1")) == NAMES
    assert all(same_pixels(tmp_path / "s1", tmp_path / "s2"))
    assert not any(same_pixels(tmp_path / "s1", tmp_path / "s5"))
    assert not any(same_pixels(photos, tmp_path / "s1"))
    out, _ = run("encrypt", photos, "--out", tmp_path / "s1", *seed(4))
    assert "0 written, 3 already done, 0 failed" in out
    run("decrypt", tmp_path / "s1", "--out", tmp_path / "d4", *seed(4))
    assert all(same_pixels(photos, tmp_path / "d4"))
    run("decrypt", tmp_path / "s1", "--out", tmp_path / "d5", *seed(5))
    assert not any(same_pixels(photos, tmp_path / "d5"))


def test_the_resume_check_reads_under_the_given_pixel_limit(tmp_path, photos):
    """The check re-encrypts the first output's source under --max-pixels, not the default
    (which refused images a user had allowed above it)."""
    seeded = ("encrypt", photos, "--out", tmp_path / "s", *seed(4))
    run(*seeded)
    out, _ = run(*seeded, "--max-pixels", 63)
    assert "0 written, 3 already done, 0 failed" in out  # 7x9 images: exactly at the limit
    _, err = run(*seeded, "--max-pixels", 62, code=ExitStatus.BAD_INPUT)
    assert "7x9 = 63 pixels exceeds the limit of 62" in err and err.count("\n") == 1


def test_resuming_under_another_seed_or_key_file_is_refused_before_writing(tmp_path, photos):
    """The manifest holds no seed and is written last; the outputs already there say it."""
    run("encrypt", photos, "--out", tmp_path / "s", *seed(4))
    (tmp_path / "s" / "keyless.json").unlink()  # as after an interrupted call
    (tmp_path / "s" / "dog" / "c.png").unlink()
    _, err = run("encrypt", photos, "--out", tmp_path / "s", *seed(5), code=ExitStatus.BAD_KEY)
    assert "a.png: already written from " in err and "but not as this call writes it" in err
    assert err.count("\n") == 1 and not (tmp_path / "s" / "dog" / "c.png").exists()
    out, _ = run("encrypt", photos, "--out", tmp_path / "s", *seed(4))
    assert "1 written, 2 already done, 0 failed" in out
    run(
        "encrypt",
        photos,
        "--out",
        tmp_path / "c",
        "--keys",
        "common",
        "--key-file",
        tmp_path / "k1",
    )
    run("keygen", "--kind", "common", "--out", tmp_path / "k2")
    _, err = run("encrypt", photos, "--out", tmp_path / "c",
                 "--keys", "common", "--key-file", tmp_path / "k2",
                 code=ExitStatus.BAD_KEY)  # fmt: skip
    assert "encrypted with another common key (check value " in err
    # new images under a key file that does not exist yet: the manifest's check value says no
    (tmp_path / "more").mkdir()
    Image.new("RGB", (7, 9)).save(tmp_path / "more" / "new.png")
    _, err = run("encrypt", tmp_path / "more", "--out", tmp_path / "c",
                 "--keys", "common", "--key-file",
                 tmp_path / "k3", code=ExitStatus.BAD_KEY)  # fmt: skip
    assert "another common key (check value " in err and "this key file is new" in err
    assert not (tmp_path / "c" / "new.png").exists() and not (tmp_path / "k3").exists()
    np.savez(tmp_path / "d.npz", x_train=np.zeros((2, 4, 4, 3), np.uint8), y_train=[0, 1],
             x_test=np.zeros((1, 4, 4, 3), np.uint8), y_test=[1])  # fmt: skip
    run("encrypt", tmp_path / "d.npz", "--out", tmp_path / "n", *seed(1))
    run("encrypt", tmp_path / "d.npz", "--out", tmp_path / "n", *seed(1))
    _, err = run(
        "encrypt", tmp_path / "d.npz", "--out", tmp_path / "n", *seed(2), code=ExitStatus.BAD_KEY
    )
    assert "d.npz: already written from " in err


def test_common_key_is_created_once_and_reused(tmp_path, photos):
    key = ("--keys", "common", "--key-file", tmp_path / "common.key")
    run("encrypt", photos, "--out", tmp_path / "c", *key)
    assert (tmp_path / "common.key").is_file()
    assert sorted(pixels(tmp_path / "c")) == NAMES
    assert not any(same_pixels(photos, tmp_path / "c"))
    # Under one PE key, the negative of an image encrypts to the negative of its ciphertext.
    (tmp_path / "neg").mkdir()
    plain = read_image(photos / "cat/a.png")
    Image.fromarray(255 - plain).save(tmp_path / "neg" / "a.png")
    run("encrypt", tmp_path / "neg", "--out", tmp_path / "cn", *key)
    cipher_a = read_image(tmp_path / "c" / "cat/a.png")
    assert np.array_equal(read_image(tmp_path / "cn" / "a.png"), 255 - cipher_a)
    run("decrypt", tmp_path / "c", "--out", tmp_path / "cd", *key)
    assert all(same_pixels(photos, tmp_path / "cd"))
    # another key file is refused by the upload's check value (a 4-byte HKDF, not the key)
    run("keygen", "--kind", "common", "--out", tmp_path / "other.key")
    manifest = json.loads((tmp_path / "c" / "keyless.json").read_text())
    check = manifest["common_key_check"]
    assert manifest["version"] == 2  # older keyless refuses it by version, in its own words
    assert len(check) == 8 and check not in (tmp_path / "common.key").read_bytes().hex()
    _, err = run("decrypt", tmp_path / "c", "--out", tmp_path / "w",
                 "--keys", "common", "--key-file",
                 tmp_path / "other.key", code=ExitStatus.BAD_KEY)  # fmt: skip
    assert f"encrypted with another common key (check value {check}, " in err
    assert not (tmp_path / "w").exists()


def test_shards_from_two_workers_share_one_new_common_key(tmp_path, photos):
    from keyless.cipher import create_cipher
    from keyless.upload import read_shards

    args = ("encrypt", photos, "--out", tmp_path / "up", "--shard-size", "2", "--workers", "2",
            "--keys", "common", "--key-file", tmp_path / "common.key")  # fmt: skip
    out, _ = run(*args)
    assert "3 written, 0 already done, 0 failed" in out
    key = create_cipher().load_key(tmp_path / "common.key")
    shards = list(read_shards(tmp_path / "up"))
    assert [len(ids) for _, _, _, ids in shards] == [2, 1]
    for _, images, _, ids in shards:
        for image, image_id in zip(create_cipher().decrypt(images, key), ids, strict=True):
            assert np.array_equal(image, read_image(photos / f"{image_id}.png"))
    out, _ = run(*args)
    assert "0 written, 3 already done, 0 failed" in out
    run("decrypt", tmp_path / "up", "--out", tmp_path / "back", *args[-4:])
    assert all(same_pixels(photos, tmp_path / "back"))


def test_a_sharded_upload_decrypts_into_the_photo_folders_layout(tmp_path, photos):
    run("encrypt", photos, "--out", tmp_path / "up", "--shard-size", "2", *seed(4))
    out, _ = run("decrypt", tmp_path / "up", "--out", tmp_path / "back", "--workers", "2", *seed(4))
    assert "decrypt: 3 written, 0 already done, 0 failed" in out
    assert sorted(pixels(tmp_path / "back")) == NAMES
    assert all(same_pixels(photos, tmp_path / "back"))
    shard = tmp_path / "up" / "train-000000.npz"  # cat/a and cat/b
    shard.write_bytes(shard.read_bytes()[:-1])
    out, err = run("decrypt", tmp_path / "up", "--out", tmp_path / "cut", *seed(4),
                   code=ExitStatus.BAD_INPUT)  # fmt: skip
    assert [line for line in err.splitlines() if "error" in line] == [
        f"keyless: error: {shard}: does not match its SHA-256 in the upload's manifest (a "
        "damaged shard, or one from another upload)"
    ]
    assert "1 written, 0 already done, 1 failed" in out
    assert sorted(pixels(tmp_path / "cut")) == ["dog/c.png"]


def test_a_decryption_rerun_under_another_seed_does_not_keep_the_first_ones_noise(tmp_path, photos):
    run("encrypt", photos, "--out", tmp_path / "s", *seed(4))
    run("decrypt", tmp_path / "s", "--out", tmp_path / "d", *seed(5))  # noise, undetectable
    (tmp_path / "d" / "dog" / "c.png").unlink()
    _, err = run(
        "decrypt", tmp_path / "s", "--out", tmp_path / "d", *seed(4), code=ExitStatus.BAD_KEY
    )
    assert "a.png: already written from " in err and "write into a new --out" in err
    assert not (tmp_path / "d" / "dog" / "c.png").exists()
    run("decrypt", tmp_path / "s", "--out", tmp_path / "right", *seed(4))
    assert all(same_pixels(photos, tmp_path / "right"))


def test_an_older_common_key_manifest_without_a_check_value_still_decrypts(tmp_path, photos):
    key = ("--keys", "common", "--key-file", tmp_path / "common.key")
    run("encrypt", photos, "--out", tmp_path / "c", *key)
    manifest = json.loads((tmp_path / "c" / "keyless.json").read_text())
    del manifest["common_key_check"]
    (tmp_path / "c" / "keyless.json").write_text(json.dumps(manifest))
    run("decrypt", tmp_path / "c", "--out", tmp_path / "cd", *key)
    assert all(same_pixels(photos, tmp_path / "cd"))


def test_independent_keys_differ_and_cannot_be_decrypted(tmp_path, photos):
    for name in ("a", "b"):
        out, _ = run("encrypt", photos, "--out", tmp_path / name)
        assert "3 written, 0 already done, 0 failed" in out
        assert sorted(pixels(tmp_path / name)) == NAMES
    assert not any(same_pixels(tmp_path / "a", tmp_path / "b"))
    assert not any(same_pixels(photos, tmp_path / "a"))
    plain, enc = pixels(photos), pixels(tmp_path / "a")
    for name in NAMES:  # each output is a PE encryption of its own input
        assert np.array_equal(sorted_fold(enc[name]), sorted_fold(plain[name])), name
    _, err = run("decrypt", tmp_path / "a", "--out", tmp_path / "d", code=ExitStatus.USAGE)
    assert "Missing option '--keys'" in err and not (tmp_path / "d").exists()
    _, err = run(
        "decrypt",
        tmp_path / "a" / "cat",
        "--out",
        tmp_path / "d",
        *seed(0),
        code=ExitStatus.BAD_KEY,
    )
    assert "independent keys, thrown away" in err and not (tmp_path / "d").exists()


def test_key_choice_errors(tmp_path, photos):
    _, err = run("encrypt", photos, "--out", tmp_path / "x", "--keys", "common", "--seed", 1,
                 "--key-file", tmp_path / "k", code=ExitStatus.USAGE)  # fmt: skip
    assert "--seed goes with --keys seed, not --keys common" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "k").exists()
    _, err = run("encrypt", photos, "--out", tmp_path / "y",
                 "--keys", "master-key", "--key-file", tmp_path / "no.key",
                 code=ExitStatus.BAD_KEY)  # fmt: skip
    assert err.startswith("keyless: error:") and "cannot read master key" in err
    assert "Traceback" not in err and not (tmp_path / "y").exists()


def test_npz_encrypt_decrypt(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {k: rng.integers(0, 256, (4, 5, 5, 3), dtype=np.uint8) for k in ("x_train", "x_test")}
    arrays |= {"y_train": np.arange(4, dtype=np.uint8), "y_test": np.arange(4, dtype=np.uint8)}
    np.savez(tmp_path / "d.npz", **arrays)
    run("keygen", "--out", tmp_path / "m.key")
    key = ("--keys", "master-key", "--key-file", tmp_path / "m.key")
    out, _ = run("encrypt", tmp_path / "d.npz", "--out", tmp_path / "e", *key)
    assert "1 written" in out
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["d.npz", "keyless.json"]
    enc = np.load(tmp_path / "e" / "d.npz")
    assert sorted(enc.files) == sorted(arrays)
    for split in ("train", "test"):
        x = enc[f"x_{split}"]
        assert x.dtype == np.uint8 and x.shape == arrays[f"x_{split}"].shape
        assert not (x == arrays[f"x_{split}"]).all(axis=(1, 2, 3)).any()  # every image changed
        assert np.array_equal(enc[f"y_{split}"], arrays[f"y_{split}"])
    run("decrypt", tmp_path / "e" / "d.npz", "--out", tmp_path / "p", *key)
    dec = np.load(tmp_path / "p" / "d.npz")
    assert sorted(dec.files) == sorted(arrays)
    assert all(np.array_equal(dec[k], arrays[k]) for k in arrays)


def test_fold_writes_the_doubled_fold(tmp_path, photos):
    out, _ = run("fold", photos, "--out", tmp_path / "f")
    assert "3 written" in out
    folded, plain = pixels(tmp_path / "f"), pixels(photos)
    assert sorted(folded) == NAMES
    for name in NAMES:
        p = plain[name].astype(np.int16)
        assert np.array_equal(folded[name], 2 * np.minimum(p, 255 - p)), name


def test_keygen_refuses_overwrite(tmp_path):
    out, _ = run("keygen", "--out", tmp_path / "k", "--kind", "common", "--size", "9x7")
    assert "wrote common key" in out
    before = (tmp_path / "k").read_bytes()
    assert before
    for kind in ("master", "common"):
        _, err = run("keygen", "--out", tmp_path / "k", "--kind", kind, code=ExitStatus.BAD_KEY)
        assert "refusing to overwrite" in err and "Traceback" not in err
    assert (tmp_path / "k").read_bytes() == before
    _, err = run("keygen", "--out", tmp_path / "k2", "--kind", "common", "--size", "9by7", code=2)
    assert "expected HxW" in err and not (tmp_path / "k2").exists()


def test_demo_writes_grid(tmp_path):
    out, _ = run("demo", "--out", tmp_path / "grid.png")
    assert str(tmp_path / "grid.png") in out
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size[0] > 4 * 96 and grid.size[1] >= 96
    assert len(np.unique(np.asarray(grid.convert("RGB")))) > 1  # not a blank canvas


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
        "noarrays.npz": "must hold exactly x_train",
        "missing.png": "no such file",
    }


def test_bad_inputs_fail_alone_with_one_line_each(tmp_path):
    folder = tmp_path / "in"
    expected = _bad_inputs(folder)
    names = [folder / n for n in expected] + [folder / "good.png"]
    out, err = run(
        "encrypt",
        *names,
        "--out",
        tmp_path / "out",
        "--max-pixels",
        10_000,
        code=ExitStatus.BAD_INPUT,
    )
    lines = [line for line in err.splitlines() if line.startswith("keyless: error:")]
    for name, words in expected.items():
        assert any(name in line and words in line for line in lines), (name, err)
    assert "Traceback" not in err and len(lines) == len(expected)
    # nothing half-written: only the good image, encrypted
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png", "keyless.json"]
    encrypted = read_image(tmp_path / "out" / "good.png")
    assert not np.array_equal(encrypted, read_image(folder / "good.png"))
    assert f"1 written, 0 already done, {len(expected)} failed" in out


def test_greyscale_and_palette_are_converted(tmp_path):
    Image.new("L", (4, 4), 90).save(tmp_path / "grey.png")
    Image.new("RGB", (4, 4), (10, 20, 30)).convert("P").save(tmp_path / "pal.png")
    inputs = (tmp_path / "grey.png", tmp_path / "pal.png")
    out, _ = run("encrypt", *inputs, "--out", tmp_path / "o", *seed(1))
    assert "2 written" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "grey.png",
        "keyless.json",
        "pal.png",
    ]
    assert read_image(tmp_path / "o" / "grey.png").shape == (4, 4, 3)
    assert not (read_image(tmp_path / "o" / "grey.png") == 90).all()
    run("decrypt", tmp_path / "o", "--out", tmp_path / "d", *seed(1))
    grey = read_image(tmp_path / "d" / "grey.png")
    assert grey.shape == (4, 4, 3) and (grey == 90).all()
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
    for mode, key in (("master", ("--keys", "master-key", "--key-file", tmp_path / "m.key")),
                      ("common", (
                       "--keys", "common", "--key-file", tmp_path / "c.key"))):  # fmt: skip
        out, _ = run("encrypt", folder, "--out", tmp_path / f"e-{mode}", *key, *flags)
        assert "2 written" in out
        assert not any(same_pixels(folder, tmp_path / f"e-{mode}"))
        run("decrypt", tmp_path / f"e-{mode}", "--out", tmp_path / f"d-{mode}", *key, *flags)
        assert all(same_pixels(folder, tmp_path / f"d-{mode}"))
    assert (tmp_path / "c.key").is_file()
    _, err = run("encrypt", folder, "--out", tmp_path / "x", "--cipher", cipher,
                 "--np-mode", "balanced", code=2)  # fmt: skip
    assert "--np-mode: not an option of cipher" in err
    _, err = run("encrypt", folder, "--out", tmp_path / "y", "--cipher", cipher,
                 "--block-size", 5, code=ExitStatus.BAD_INPUT)  # fmt: skip
    assert "divisible by the block size 5" in err


@pytest.mark.parametrize(
    ("option", "values"),
    [
        ("--max-batch", ["0"]),
        ("--max-wait-ms", ["-1"]),
        ("--max-request-bytes", ["0"]),
        ("--max-images", ["0"]),
        ("--max-pixels", ["-5"]),
        ("--max-connections", ["0"]),
        ("--threads", ["0"]),
        ("--port", ["70000"]),
    ],
)
def test_serve_refuses_out_of_range_numbers_in_one_line(tmp_path, option, values):
    result = CliRunner().invoke(main, ["serve", str(tmp_path), option, *values])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert f"Invalid value for '{option}'" in line and values[0] in line


def test_an_output_that_cannot_be_written_is_one_line_and_the_others_are_written(tmp_path, photos):
    (tmp_path / "enc" / "cat").mkdir(parents=True)
    (tmp_path / "enc" / "dog").write_text("a file where the dog/ folder should go")
    out, err = run("encrypt", photos, "--out", tmp_path / "enc", code=1)
    assert "2 written, 0 already done, 1 failed" in out
    errors = [line for line in err.splitlines() if line.startswith("keyless: error: ")]
    assert len(errors) == 1 and "dog/c.png: cannot write" in errors[0], err
    assert sorted(pixels(tmp_path / "enc")) == ["cat/a.png", "cat/b.png"]
    assert not [p for p in (tmp_path / "enc").rglob(".*")]  # no temporary file left behind


def test_attack_refuses_a_budget_of_no_time(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"")  # never read: the option is refused first
    args = ["attack", "--data", tmp_path / "d.npz", "--budget-minutes", "0", "--out", tmp_path]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2 and "Invalid value for '--budget-minutes'" in result.stderr, (
        result.output
    )
    assert not (tmp_path / "report.json").exists()


def test_attack_on_a_folder_without_splits_is_one_line(tmp_path, photos):
    _, err = run("attack", "--data", photos, "--out", tmp_path / "r", code=ExitStatus.BAD_INPUT)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "an attack needs train and test splits" in lines[0], err
    assert not (tmp_path / "r").exists()


def test_plain_outputs_stay_the_owners_and_inputs_never_join_the_outputs(tmp_path, photos):
    run("keygen", "--out", tmp_path / "m.key")
    key = ("--keys", "master-key", "--key-file", tmp_path / "m.key")
    run("encrypt", photos, "--out", tmp_path / "enc", *key)
    (tmp_path / "dec").mkdir()
    (tmp_path / "dec").chmod(0o1777)  # a folder that was already there, shared like /tmp
    run("decrypt", tmp_path / "enc", "--out", tmp_path / "dec", *key)
    made = [p for p in (tmp_path / "dec").rglob("*") if p.is_dir()]
    assert (tmp_path / "dec").stat().st_mode & 0o7777 == 0o1777  # not keyless's to change
    assert {p.stat().st_mode & 0o777 for p in made} == {0o700} and len(made) == 2
    files = [p for p in (tmp_path / "dec").rglob("*") if p.is_file()]
    assert {p.stat().st_mode & 0o777 for p in files} == {0o600} and len(files) == 3
    # plain photos inside the output folder would join the upload and its manifest
    (tmp_path / "up").mkdir()
    photos.rename(tmp_path / "up" / "raw")
    _, err = run("encrypt", tmp_path / "up" / "raw", "--out", tmp_path / "up", code=2)
    assert f"the input {tmp_path / 'up' / 'raw'} is inside {tmp_path / 'up'};" in err
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["raw"]
