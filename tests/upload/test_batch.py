"""The owner's batch calls from Python: key modes, folder rules, permissions, the summary."""

import os
import re
from functools import partial

import numpy as np
import pytest
from PIL import Image

from keyless.cipher import create_cipher
from keyless.data import read_image
from keyless.errors import ConfigError, ExitStatus, KeyMaterialError
from keyless.keys import MasterKeySource
from keyless.upload import (
    MANIFEST,
    BatchSummary,
    KeyPlan,
    Manifest,
    decrypt_files,
    encrypt_files,
    fold_files,
)

NAMES = ["cat/a.png", "cat/b.png", "dog/c.png"]
PE = create_cipher()


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for name in NAMES:
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / "photos" / name)
    return tmp_path / "photos"


def pixels(folder):
    return {p.relative_to(folder).as_posix(): read_image(p) for p in sorted(folder.rglob("*.png"))}


def mode(path):
    return path.stat().st_mode & 0o7777


@pytest.mark.parametrize("keys", ["seed", "master-key", "common"])
def test_each_key_mode_that_keeps_a_key_round_trips_and_is_recorded(tmp_path, photos, keys):
    MasterKeySource.create(tmp_path / "m.key")
    given = {"seed": {"seed": 3}, "master-key": {"key_file": tmp_path / "m.key"},
             "common": {"key_file": tmp_path / "c.key"}}[keys]  # fmt: skip
    summary = encrypt_files([photos], tmp_path / "up", PE, keys, **given)
    assert summary == BatchSummary(tmp_path / "up", written=3)
    assert summary.exit_status == ExitStatus.OK
    manifest = Manifest.read(tmp_path / "up")
    assert manifest.keys == keys and manifest.cipher == PE and manifest.counts == {"train": 3}
    plain, encrypted = pixels(photos), pixels(tmp_path / "up")
    assert sorted(encrypted) == NAMES and not any(
        np.array_equal(plain[n], encrypted[n]) for n in NAMES
    )
    again = encrypt_files([photos], tmp_path / "up", PE, keys, **given)  # a resume
    assert (again.written, again.skipped, again.errors) == (0, 3, [])
    back = decrypt_files([tmp_path / "up"], tmp_path / "back", PE, keys, **given)
    assert back.written == 3 and back.errors == []
    decrypted = pixels(tmp_path / "back")
    assert all(np.array_equal(plain[n], decrypted[n]) for n in NAMES)


def test_independent_keys_are_thrown_away_so_nothing_decrypts_them(tmp_path, photos):
    encrypt_files([photos], tmp_path / "up", PE)
    assert Manifest.read(tmp_path / "up").keys == "independent"
    with pytest.raises(ConfigError, match="for decrypt, got 'independent'"):
        decrypt_files([tmp_path / "up"], tmp_path / "back", PE, "independent")
    with pytest.raises(KeyMaterialError, match="independent keys, thrown away"):
        decrypt_files([tmp_path / "up"], tmp_path / "back", PE, "seed", seed=0)
    assert not (tmp_path / "back").exists()


@pytest.mark.parametrize(
    ("keys", "given", "words"),
    [
        ("seed", {}, "--keys seed needs --seed"),
        (
            "seed",
            {"seed": 1, "key_file": "k"},
            "--key-file goes with --keys common or master-key, not ",
        ),
        ("common", {}, "--keys common needs --key-file"),
        ("master-key", {"seed": 1}, "--seed goes with --keys seed, not --keys master-key"),
        ("independent", {"seed": 1}, "--seed goes with --keys seed, not --keys independent"),
        ("plain", {}, "keys must be one of independent, common, master-key, seed for encrypt"),
    ],
)
def test_a_key_mode_without_what_it_needs_is_one_line_and_writes_nothing(
    tmp_path, photos, keys, given, words
):
    with pytest.raises(ConfigError) as refused:
        encrypt_files([photos], tmp_path / "up", PE, keys, **given)
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert refused.value.exit_code == ExitStatus.USAGE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_decrypting_with_a_missing_common_key_file_is_a_key_error(tmp_path):
    with pytest.raises(KeyMaterialError, match=r"no\.key: cannot read key"):
        KeyPlan.for_mode(PE, "common", key_file=tmp_path / "no.key", decrypting=True)
    assert not (tmp_path / "no.key").exists()


def test_plain_outputs_are_the_owners_but_a_folder_already_there_keeps_its_mode(tmp_path, photos):
    encrypt_files([photos], tmp_path / "up", PE, "seed", seed=1)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp: anyone may write, the sticky bit keeps files apart
    decrypt_files([tmp_path / "up"], shared, PE, "seed", seed=1)
    assert mode(shared) == 0o1777
    assert {mode(shared / n) for n in NAMES} == {0o600}
    assert {mode(shared / folder) for folder in ("cat", "dog")} == {0o700}
    decrypt_files([tmp_path / "up"], tmp_path / "new" / "deeper" / "back", PE, "seed", seed=1)
    made = [tmp_path / "new", tmp_path / "new" / "deeper", tmp_path / "new" / "deeper" / "back"]
    assert {mode(folder) for folder in made} == {0o700}
    decrypted = pixels(made[-1])
    assert all(np.array_equal(image, decrypted[name]) for name, image in pixels(photos).items())


def test_outputs_never_join_the_inputs_nor_plain_images_the_upload(tmp_path, photos):
    encrypt_files([photos], tmp_path / "up", PE, "seed", seed=1)
    before = sorted(tmp_path.rglob("*"))
    up = tmp_path / "up"
    refusals = [
        (partial(encrypt_files, [photos], photos / "enc", PE), "is inside the input folder"),
        (partial(fold_files, [photos / "cat"], photos), f"the input {photos / 'cat'} is inside"),
        (partial(decrypt_files, [up / "cat"], up / "plain", PE, "seed", seed=1),
         "is inside the encrypted upload"),
    ]  # fmt: skip
    for call, words in refusals:
        with pytest.raises(ConfigError, match=re.escape(words)) as refused:
            call()
        assert refused.value.exit_code == ExitStatus.USAGE
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_a_failing_input_is_one_error_in_the_summary_and_the_others_are_written(tmp_path, photos):
    (photos / "broken.png").write_text("not an image")
    summary = encrypt_files([photos, tmp_path / "missing.png"], tmp_path / "up", PE)
    assert (summary.written, summary.skipped) == (3, 0)
    named = {str(e).split(":")[0] for e in summary.errors}
    assert named == {str(photos / "broken.png"), str(tmp_path / "missing.png")}
    assert summary.exit_status == ExitStatus.BAD_INPUT
    assert Manifest.read(tmp_path / "up").counts == {"train": 3}
    nothing = encrypt_files([photos / "broken.png"], tmp_path / "none", PE)
    assert nothing.written == 0 and len(nothing.errors) == 1
    assert not (tmp_path / "none" / MANIFEST).exists()  # a call that wrote nothing describes none


def test_fold_files_writes_the_doubled_fold(tmp_path, photos):
    summary = fold_files([photos], tmp_path / "fold")
    assert summary.written == 3 and summary.errors == []
    folded = pixels(tmp_path / "fold")
    for name, image in pixels(photos).items():
        p = image.astype(np.int16)
        assert np.array_equal(folded[name], 2 * np.minimum(p, 255 - p)), name
