"""Decrypting a sharded upload back into one PNG per image, the photo folder's layout."""

import json
import re

import numpy as np
import pytest

from keyless.cipher import create_cipher
from keyless.data import read_image
from keyless.errors import ConfigError, ExitStatus, InputError, KeyMaterialError
from keyless.keys import MasterKeySource
from keyless.upload import MANIFEST, Manifest, decrypt_files, encrypt_files
from keyless.upload._shards import entry, parse_shard, shard_bytes, shards_hash
from tests.upload.test_shards import damage, foreign, make_photos

PE = create_cipher()
SEED = {"keys": "seed", "seed": 5}


@pytest.fixture
def photos(tmp_path):
    return make_photos(tmp_path / "photos", {"train/cat": 3, "train/dog": 2, "test/cat": 1,
                                             "test/dog": 2})  # fmt: skip


def pixels(folder):
    return {p.relative_to(folder).as_posix(): read_image(p) for p in sorted(folder.rglob("*.png"))}


def mode(path):
    return path.stat().st_mode & 0o777


def given_keys(tmp_path, keys):
    """The options of key mode ``keys`` (a master key made for it)."""
    if keys == "master-key" and not (tmp_path / "m.key").exists():
        MasterKeySource.create(tmp_path / "m.key")
    return {"keys": keys, **{"seed": {"seed": 5}, "master-key": {"key_file": tmp_path / "m.key"},
                             "common": {"key_file": tmp_path / "c.key"}}[keys]}  # fmt: skip


@pytest.mark.parametrize(("keys", "workers"), [("seed", 1), ("master-key", 2), ("common", 1)])
def test_every_image_comes_back_bit_exact_at_its_path_in_the_photo_folder(
    tmp_path, photos, keys, workers
):
    given = given_keys(tmp_path, keys)
    encrypt_files([photos], tmp_path / "up", PE, shard_size=2, **given)
    assert len(Manifest.read(tmp_path / "up").shards) == 5
    summary = decrypt_files([tmp_path / "up"], tmp_path / "back", PE, workers=workers, **given)
    assert (summary.written, summary.skipped, summary.errors) == (8, 0, [])
    plain, back = pixels(photos), pixels(tmp_path / "back")
    assert sorted(back) == sorted(plain) and len(plain) == 8
    assert all(np.array_equal(plain[name], back[name]) for name in plain)
    assert {mode(p) for p in (tmp_path / "back").rglob("*.png")} == {0o600}
    assert {mode(p) for p in (tmp_path / "back").rglob("*") if p.is_dir()} == {0o700}
    assert mode(tmp_path / "back") == 0o700


def test_a_damaged_missing_or_foreign_shard_is_one_error_and_the_others_come_back(tmp_path, photos):
    up = tmp_path / "up"
    encrypt_files([photos], up, PE, shard_size=2, **SEED)
    encrypt_files([photos], tmp_path / "other", PE, shard_size=2, keys="seed", seed=6)
    lost = {"train/cat/01.png", "train/cat/00.png"}  # what train-000001 holds
    for harm, says in [
        (damage, "does not match its SHA-256 in the upload's manifest"),
        (foreign, "a damaged shard, or one from another upload"),
        (lambda up: (up / "train-000001.npz").unlink(), "missing (the upload's manifest lists"),
    ]:
        harm(up)
        out = tmp_path / f"back-{harm.__name__}"
        summary = decrypt_files([up], out, PE, **SEED)
        assert (summary.written, summary.skipped, len(summary.errors)) == (6, 0, 1)
        message = str(summary.errors[0])
        assert message.startswith(f"{up / 'train-000001.npz'}: ") and says in message
        assert "\n" not in message and summary.exit_status == ExitStatus.BAD_INPUT
        plain, back = pixels(photos), pixels(out)
        assert sorted(back) == sorted(plain.keys() - lost)
        assert all(np.array_equal(plain[name], back[name]) for name in back)
    (up / "train-000009.npz").write_bytes(b"x")  # a payload file the manifest does not list
    summary = decrypt_files([up], tmp_path / "unlisted", PE, **SEED)
    unlisted, missing = (str(error) for error in summary.errors)
    assert unlisted.startswith(f"{up / 'train-000009.npz'}: not one of the upload's shards")
    assert missing.startswith(f"{up / 'train-000001.npz'}: missing") and summary.written == 6


def test_shard_files_decrypt_alone_and_a_sharded_upload_takes_no_other_inputs(tmp_path, photos):
    up = tmp_path / "up"
    encrypt_files([photos], up, PE, shard_size=2, **SEED)
    encrypt_files([photos], tmp_path / "files", PE, **SEED)
    shards = [up / "test-000001.npz", up / "train-000000.npz", up / MANIFEST]
    summary = decrypt_files(shards, tmp_path / "part", PE, **SEED)
    assert sorted(pixels(tmp_path / "part")) == ["test/cat/00.png", "train/cat/02.png",
                                                 "train/dog/01.png"]  # fmt: skip
    assert summary.written == 3 and len(summary.errors) == 1
    assert str(summary.errors[0]).startswith(f"{up / MANIFEST}: not one of the shards of")
    for inputs in ([up, tmp_path / "files"], [tmp_path / "files" / "train", up]):
        with pytest.raises(ConfigError, match="decrypt a sharded upload alone"):
            decrypt_files(inputs, tmp_path / "mixed", PE, **SEED)
    with pytest.raises(ConfigError, match=re.escape("is inside the encrypted upload")):
        decrypt_files([up / "test-000000.npz"], up / "plain", PE, **SEED)
    assert not (tmp_path / "mixed").exists() and not (up / "plain").exists()


def test_a_rerun_writes_what_is_missing_and_refuses_another_seed(tmp_path, photos):
    up, back = tmp_path / "up", tmp_path / "back"
    encrypt_files([photos], up, PE, shard_size=2, **SEED)
    decrypt_files([up], back, PE, **SEED)
    before = pixels(back)
    (back / "train" / "dog" / "01.png").unlink()
    (back / "train" / "dog" / ".01.png.k2j4x9ab.tmp").write_bytes(b"half a png")  # a killed write
    summary = decrypt_files([up], back, PE, workers=2, **SEED)
    assert (summary.written, summary.skipped, summary.errors) == (1, 7, [])
    assert not (back / "train" / "dog" / ".01.png.k2j4x9ab.tmp").exists()
    assert pixels(back).keys() == before.keys()
    assert all(np.array_equal(image, before[name]) for name, image in pixels(back).items())
    (back / "test" / "cat" / "00.png").unlink()
    with pytest.raises(KeyMaterialError, match=r"already written from .*test-000000\.npz, but not"):
        decrypt_files([up], back, PE, keys="seed", seed=6)
    assert not (back / "test" / "cat" / "00.png").exists()


def test_other_keys_ciphers_and_edited_manifests_are_refused_as_for_files(tmp_path, photos):
    MasterKeySource.create(tmp_path / "other.key")
    encrypt_files([photos], tmp_path / "up", PE, shard_size=2, **given_keys(tmp_path, "master-key"))
    encrypt_files([photos], tmp_path / "ind", PE, shard_size=2)
    refusals = [
        ({"keys": "master-key", "key_file": tmp_path / "other.key"}, KeyMaterialError,
         "encrypted with another master key"),
        (SEED, ConfigError, "encrypted with master-key keys, not seed ones"),
    ]  # fmt: skip
    for given, error, words in refusals:
        with pytest.raises(error, match=words):
            decrypt_files([tmp_path / "up" / "train-000000.npz"], tmp_path / "w", PE, **given)
    le = create_cipher("le", block_size=1)
    with pytest.raises(ConfigError, match="encrypted with cipher pe"):
        decrypt_files([tmp_path / "up"], tmp_path / "w", le, **given_keys(tmp_path, "master-key"))
    with pytest.raises(KeyMaterialError, match="independent keys, thrown away"):
        decrypt_files([tmp_path / "ind"], tmp_path / "w", PE, **SEED)
    data = json.loads((tmp_path / "up" / MANIFEST).read_text())
    data["shards"].pop()
    (tmp_path / "up" / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(InputError, match="its shard list does not match its payload hash"):
        decrypt_files([tmp_path / "up"], tmp_path / "w", PE, **given_keys(tmp_path, "master-key"))
    assert not (tmp_path / "w").exists()


def test_an_image_id_that_leaves_the_output_folder_is_refused(tmp_path, photos):
    up = tmp_path / "up"
    encrypt_files([photos], up, PE, shard_size=2, **SEED)
    manifest = Manifest.read(up)
    shard = manifest.shards[0]
    images, labels, ids = parse_shard((up / shard["file"]).read_bytes(), shard["file"])
    data = shard_bytes(images, labels, ["../../escaped", *ids[1:]])
    (up / shard["file"]).write_bytes(data)
    manifest.shards[0] = entry(shard["file"], shard["split"], data, len(images))
    manifest.payload_sha256 = shards_hash(manifest.shards)
    manifest.write(up)
    summary = decrypt_files([up], tmp_path / "back", PE, **SEED)
    assert summary.written == 6 and len(summary.errors) == 1
    assert "holds the image id '../../escaped', not a path inside a folder" in str(
        summary.errors[0]
    )
    assert not (tmp_path.parent / "escaped.png").exists()
