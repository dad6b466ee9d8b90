import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cipher import PixelCipher, create_cipher
from keyless.cli import main
from keyless.errors import ExitStatus, InputError
from keyless.upload import MANIFEST, Manifest, describe, load_received


def _photos(folder, size=(6, 5)):
    rng = np.random.default_rng(0)
    for name in ("cat/a.png", "cat/b.png", "dog/c.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)


def _encrypt(*args):
    return CliRunner().invoke(main, ["encrypt", *map(str, args)])


def test_encrypt_describes_the_upload_and_holds_no_key(tmp_path):
    _photos(tmp_path / "photos")
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up").exit_code == 0
    data = json.loads((tmp_path / "up" / MANIFEST).read_text())
    assert data["format"] == "keyless-upload" and data["version"] == 1  # older keyless reads it
    assert "common_key_check" not in data  # version 2 adds it, for common keys only
    assert data["cipher"] == {"name": "pe", "shuffle": True, "np_mode": "coin",
                              "np_per": "component"}  # fmt: skip
    assert data["keys"] == "independent" and data["master_key_check"] is None
    assert data["image_size"] == [6, 5] and data["classes"] == ["cat", "dog"]
    assert data["counts"] == {"train": 3}  # as load_splits reads it: all training images
    manifest, splits = load_received(tmp_path / "up")
    assert manifest.counts == {"train": 3} and splits["train"].labels.tolist() == [0, 0, 1]
    again = describe(tmp_path / "up", Manifest(create_cipher(), "independent"))
    assert again.payload_sha256 == data["payload_sha256"]  # the hash is of what is there
    (tmp_path / "up" / "cat" / "a.png").write_bytes(
        (tmp_path / "photos" / "cat/b.png").read_bytes()
    )
    assert (
        describe(tmp_path / "up", Manifest(create_cipher(), "independent")).payload_sha256
        != data["payload_sha256"]
    )


def test_an_upload_refuses_ciphertexts_made_another_way(tmp_path):
    _photos(tmp_path / "photos")
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up").exit_code == 0
    before = sorted(p.name for p in (tmp_path / "up").rglob("*"))
    Image.new("RGB", (6, 5)).save(tmp_path / "photos" / "dog" / "d.png")
    seeded = ["--keys", "seed", "--seed", "1"]
    for extra, words in ((["--cipher", "le", "--block-size", "1"], "not le (block_size=1, "),
                         (seeded, "with independent keys, not seed")):  # fmt: skip
        result = _encrypt(tmp_path / "photos", "--out", tmp_path / "up", *extra)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert sorted(p.name for p in (tmp_path / "up").rglob("*")) == before  # nothing added
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up").exit_code == 0  # a resume
    assert Manifest.read(tmp_path / "up").counts == {"train": 4}


def test_a_split_upload_with_nested_folders_is_described_as_the_loader_reads_it(tmp_path):
    for name in ("train/cat/indoor/a.png", "train/cat/outdoor/b.png", "train/dog/c.png",
                 "test/dog/d.png", "test/e.png"):  # fmt: skip
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (9, 9, 9)).save(tmp_path / "photos" / name)
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up").exit_code == 0
    manifest = Manifest.read(tmp_path / "up")
    assert manifest.classes == ["cat", "dog"] and manifest.counts == {"train": 3, "test": 2}
    with pytest.raises(InputError, match=r"test/e\.png: an image outside any class folder$"):
        load_received(tmp_path / "up")
    (tmp_path / "photos" / "test" / "e.png").unlink()
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up2").exit_code == 0
    manifest, splits = load_received(tmp_path / "up2")
    assert manifest.counts == {"train": 3, "test": 1} and splits["test"].labels.tolist() == [1]


def test_a_master_key_upload_records_its_check_value_not_its_secret(tmp_path):
    _photos(tmp_path / "photos")
    CliRunner().invoke(main, ["keygen", "--out", str(tmp_path / "m.key")])
    secret = (tmp_path / "m.key").read_text().split()[1]
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up",
                    "--keys", "master-key", "--key-file",
                    tmp_path / "m.key").exit_code == 0  # fmt: skip
    text = (tmp_path / "up" / MANIFEST).read_text()
    manifest = Manifest.read(tmp_path / "up")
    assert manifest.keys == "master-key" and len(manifest.master_key_check) == 8
    assert manifest.master_key_check not in secret and secret[:8] not in text


def test_the_cipher_is_read_back_as_a_cipher_and_older_manifests_still_load(tmp_path):
    _photos(tmp_path / "photos")
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up", "--cipher", "le",
                    "--block-size", "1").exit_code == 0  # fmt: skip
    manifest = Manifest.read(tmp_path / "up")
    assert manifest.cipher == create_cipher("le", block_size=1)
    assert manifest.to_dict()["cipher"] == manifest.cipher.settings()
    # a manifest of an older keyless: PE's settings without its later options, version 1
    data = json.loads((tmp_path / "up" / MANIFEST).read_text())
    old = {**data, "cipher": {"name": "pe", "shuffle": False}, "version": 1}
    (tmp_path / "up" / MANIFEST).write_text(json.dumps(old))
    assert Manifest.read(tmp_path / "up").cipher == PixelCipher(shuffle=False)


def test_a_damaged_manifest_is_one_line(tmp_path):
    _photos(tmp_path / "photos")
    (tmp_path / "up").mkdir()
    good = {"format": "keyless-upload", "version": 1, "cipher": {"name": "pe"}, "keys": "seed"}
    for text in ("{", '{"format": "other", "version": 1}', "[]", '{"format": "keyless-upload"}',
                 json.dumps({**good, "cipher": {"name": "rot13"}}),
                 json.dumps({**good, "cipher": {"name": "pe", "rounds": 3}}),
                 json.dumps({**good, "cipher": "pe"}),
                 json.dumps({**good, "keys": "plain"})):  # fmt: skip
        (tmp_path / "up" / MANIFEST).write_text(text)
        result = _encrypt(tmp_path / "photos", "--out", tmp_path / "up")
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == ExitStatus.BAD_INPUT and len(lines) == 1, result.stderr
        assert "keyless.json: not a keyless upload manifest (" in lines[0]


def test_the_owner_resizes_before_encrypting(tmp_path):
    from keyless.data import fit_image, read_image

    rng = np.random.default_rng(1)
    for name, shape in (("a/wide.png", (40, 70, 3)), ("a/tall.png", (90, 50, 3)),
                        ("b/same.png", (32, 32, 3))):  # fmt: skip
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
            tmp_path / "photos" / name
        )
    assert _encrypt(tmp_path / "photos", "--out", tmp_path / "up", "--size", "32",
                    "--keys", "seed", "--seed", "4").exit_code == 0  # fmt: skip
    assert Manifest.read(tmp_path / "up").image_size == [32, 32]
    runner = CliRunner()
    runner.invoke(main, ["decrypt", str(tmp_path / "up"), "--out", str(tmp_path / "back"),
                         "--keys", "seed", "--seed", "4"])  # fmt: skip
    for name in ("a/wide.png", "a/tall.png", "b/same.png"):
        expected = fit_image(read_image(tmp_path / "photos" / name), (32, 32))
        assert np.array_equal(read_image(tmp_path / "back" / name), expected)
    assert fit_image(read_image(tmp_path / "photos" / "b/same.png"), (32, 32)).shape == (32, 32, 3)
    bad = _encrypt(tmp_path / "photos", "--out", tmp_path / "x", "--size", "0x5")
    assert bad.exit_code == 2 and "sides must be 1 to" in bad.stderr


def test_a_manifest_names_the_key_modes_encrypt_writes():
    from typing import get_args

    from keyless.keymodes import KEY_MODES_OF
    from keyless.upload._manifest import UploadKeyMode

    assert get_args(UploadKeyMode) == KEY_MODES_OF["encrypt"]


def test_a_manifest_that_is_an_endless_file_is_one_line_at_once(tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / MANIFEST).symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"keyless\.json: not a keyless upload manifest \(over "):
        Manifest.read(tmp_path / "up")
