"""Sharded uploads: the format, resuming, worker processes, and the cloud's checked reads."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from keyless.cipher import create_cipher
from keyless.data import read_image
from keyless.errors import ConfigError, InputError, KeyMaterialError
from keyless.keys import MasterKeySource, SeedSource
from keyless.upload import (
    MANIFEST,
    Manifest,
    encrypt_files,
    load_received,
    read_shards,
)
from keyless.upload._pool import run_tasks

PE = create_cipher()
ROOT = Path(__file__).resolve().parents[2]
SEED = {"keys": "seed", "seed": 5}


def make_photos(folder, counts, size=(6, 8), seed=0):
    """``counts`` {"train/cat": 4, ...} random photos of (H, W) ``size``, named 00.png, 01.png..."""
    rng = np.random.default_rng(seed)
    for group, n in counts.items():
        (folder / group).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(image).save(folder / group / f"{i:02d}.png")
    return folder


@pytest.fixture
def photos(tmp_path):
    return make_photos(tmp_path / "photos", {"train/cat": 4, "train/dog": 3, "test/cat": 2,
                                             "test/dog": 1})  # fmt: skip


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_shards_hold_ciphertexts_labels_and_ids_listed_with_their_hashes(tmp_path, photos):
    summary = encrypt_files([photos], tmp_path / "up", PE, shard_size=3, **SEED)
    assert (summary.written, summary.skipped, summary.errors) == (10, 0, [])
    manifest = Manifest.read(tmp_path / "up")
    assert [(s["file"], s["split"], s["images"]) for s in manifest.shards] == [
        ("test-000000.npz", "test", 3),
        ("train-000000.npz", "train", 3),
        ("train-000001.npz", "train", 3),
        ("train-000002.npz", "train", 1),
    ]
    assert (manifest.shard_size, manifest.classes, manifest.counts, manifest.image_size) == (
        3, ["cat", "dog"], {"test": 3, "train": 7}, [6, 8])  # fmt: skip
    assert json.loads((tmp_path / "up" / MANIFEST).read_text())["version"] == 3
    read = list(read_shards(tmp_path / "up"))
    split, images, labels, ids = read[1]
    train_ids = [f"train/cat/{i:02d}" for i in range(4)] + [f"train/dog/{i:02d}" for i in range(3)]
    mixed = sorted(train_ids, key=lambda i: hashlib.sha256(i.encode()).digest())
    assert split == "train" and ids + read[2][3] + read[3][3] == mixed  # ordered by the hashes
    assert {i.split("/")[1] for i in read[2][3]} == {"cat", "dog"}  # so classes mix
    assert labels.tolist() == [int(i.startswith("train/dog")) for i in ids]
    keys = PE.keygen(3, (6, 8), SeedSource(5), ids)  # keys follow the image ids
    plain = PE.decrypt(torch.from_numpy(images), keys).numpy()
    for image, image_id in zip(plain, ids, strict=True):
        assert np.array_equal(image, read_image(photos / f"{image_id}.png"))


def test_a_small_upload_still_writes_one_file_per_image_and_a_version_1_manifest(tmp_path, photos):
    encrypt_files([photos], tmp_path / "up", PE, **SEED)
    assert json.loads((tmp_path / "up" / MANIFEST).read_text())["version"] == 1
    assert "shards" not in (tmp_path / "up" / MANIFEST).read_text()
    assert len(list((tmp_path / "up").rglob("*.png"))) == 10


def test_the_cloud_reads_shards_as_the_same_ciphertexts_as_files(tmp_path, photos):
    encrypt_files([photos], tmp_path / "shards", PE, shard_size=4, **SEED)
    encrypt_files([photos], tmp_path / "files", PE, **SEED)
    sharded, from_shards = load_received(tmp_path / "shards", require_upload=True)
    _, from_files = load_received(tmp_path / "files", require_upload=True)
    assert sharded.shard_size == 4 and from_shards.keys() == from_files.keys()
    ids: dict[str, list[str]] = {}
    for split, _, _, shard_ids in read_shards(tmp_path / "shards"):
        ids.setdefault(split, []).extend(shard_ids)
    for split in from_files:  # files in folder order, shards in their mixed order
        as_files = torch.tensor(np.argsort(ids[split]))
        assert torch.equal(from_shards[split].images[as_files], from_files[split].images)
        assert torch.equal(from_shards[split].labels[as_files], from_files[split].labels)
        assert from_shards[split].classes == from_files[split].classes


@pytest.mark.parametrize(("shard_size", "keys"), [(None, "seed"), (3, "seed"), (3, "master-key")])
def test_two_workers_write_the_same_bytes_as_one(tmp_path, shard_size, keys):
    photos = make_photos(tmp_path / "photos", {"train/cat": 20, "test/dog": 19})
    MasterKeySource.create(tmp_path / "m.key")
    given = {"keys": keys, **({"seed": 5} if keys == "seed" else {"key_file": tmp_path / "m.key"})}
    for workers in (1, 2):
        summary = encrypt_files([photos], tmp_path / f"w{workers}", PE, shard_size=shard_size,
                                workers=workers, **given)  # fmt: skip
        assert (summary.written, summary.errors) == (39, [])
    one, two = tmp_path / "w1", tmp_path / "w2"
    assert {p.relative_to(one): p.read_bytes() for p in one.rglob("*") if p.is_file()} == {
        p.relative_to(two): p.read_bytes() for p in two.rglob("*") if p.is_file()
    }


def worker_pid(task):
    time.sleep(0.05)  # long enough for both workers to take tasks
    return task, os.getpid()


def test_tasks_spread_over_worker_processes_and_come_back_in_order():
    done = run_tasks(list(range(12)), worker_pid, workers=2, desc="test")
    assert [task for task, _ in done] == list(range(12))
    assert os.getpid() not in {pid for _, pid in done} and len({pid for _, pid in done}) == 2
    assert run_tasks([3, 4], worker_pid, workers=1, desc="test") == [(3, os.getpid()),
                                                                      (4, os.getpid())]  # fmt: skip


def test_a_rerun_writes_only_the_missing_shards_and_clears_leftover_temporaries(tmp_path, photos):
    up = tmp_path / "up"
    encrypt_files([photos], up, PE, shard_size=3, **SEED)
    before = files(up)
    (up / "train-000001.npz").unlink()
    (up / ".train-000001.npz.k2j4x9ab.tmp").write_bytes(b"half a shard")  # a killed write
    (up / ".notes.txt.abcdefgh.tmp").write_bytes(b"not ours")
    summary = encrypt_files([photos], up, PE, shard_size=3, workers=2, **SEED)
    assert (summary.written, summary.skipped, summary.errors) == (3, 7, [])
    assert not (up / ".train-000001.npz.k2j4x9ab.tmp").exists()
    assert (up / ".notes.txt.abcdefgh.tmp").exists()  # temporary files of other paths stay
    (up / ".notes.txt.abcdefgh.tmp").unlink()
    assert files(up) == before


def damage(up):
    path = up / "train-000001.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    return path


def foreign(up):
    """The same shard of another upload (made with another seed)."""
    (up / "train-000001.npz").write_bytes((up.parent / "other" / "train-000001.npz").read_bytes())


@pytest.mark.parametrize(
    ("harm", "says"),
    [
        (damage, "does not match its SHA-256 in the upload's manifest"),
        (lambda up: (up / "train-000001.npz").unlink(), "missing (the upload's manifest lists"),
        (foreign, "a damaged shard, or one from another upload"),
        (lambda up: (up / "train-000009.npz").write_bytes(b"x"), "not one of the upload's shards"),
    ],
    ids=["damaged", "missing", "foreign", "unlisted"],
)
def test_a_damaged_missing_foreign_or_unlisted_shard_is_one_line_naming_it(
    tmp_path, photos, harm, says
):
    up = tmp_path / "up"
    encrypt_files([photos], up, PE, shard_size=3, **SEED)
    encrypt_files([photos], tmp_path / "other", PE, shard_size=3, keys="seed", seed=6)
    harm(up)
    for read in (lambda: load_received(up), lambda: list(read_shards(up))):
        with pytest.raises(InputError) as refused:
            read()
        message = str(refused.value)
        assert says in message and "\n" not in message
        assert message.startswith(str(up / "train-00000"))


def test_an_edited_shard_list_is_refused(tmp_path, photos):
    encrypt_files([photos], tmp_path / "up", PE, shard_size=3, **SEED)
    data = json.loads((tmp_path / "up" / MANIFEST).read_text())
    data["shards"].pop()
    (tmp_path / "up" / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(InputError, match="its shard list does not match its payload hash"):
        load_received(tmp_path / "up")


def test_a_resume_with_other_inputs_seed_or_layout_is_refused(tmp_path, photos):
    up = tmp_path / "up"
    encrypt_files([photos], up, PE, shard_size=3, **SEED)
    with pytest.raises(KeyMaterialError, match="not as this call writes it"):
        encrypt_files([photos], up, PE, shard_size=3, keys="seed", seed=6)
    with pytest.raises(ConfigError, match="holds shards of 3 images, not shards of 4"):
        encrypt_files([photos], up, PE, shard_size=4, **SEED)
    with pytest.raises(ConfigError, match="holds shards of 3 images, not one file per image"):
        encrypt_files([photos], up, PE, **SEED)
    (photos / "train" / "dog" / "02.png").unlink()  # the last shard is one too many
    with pytest.raises(InputError, match=r"train-000002\.npz: a shard this call does not write"):
        encrypt_files([photos], up, PE, shard_size=3, **SEED)
    make_photos(photos, {"train/dog": 3})
    make_photos(photos, {"train/ant": 1}, seed=1)  # a new class: every label moves
    with pytest.raises(InputError, match=r"test-000000\.npz: holds other images than this call"):
        encrypt_files([photos], up, PE, shard_size=3, **SEED)


def test_a_shard_with_an_unreadable_image_waits_for_it_and_the_others_are_written(tmp_path, photos):
    (photos / "train" / "dog" / "01.png").write_bytes(b"not a png")
    summary = encrypt_files([photos], tmp_path / "up", PE, shard_size=3, **SEED)
    assert summary.written == 7 and len(summary.errors) == 1  # train-000000 waits
    assert str(summary.errors[0]).startswith(str(photos / "train" / "dog" / "01.png"))
    manifest = Manifest.read(tmp_path / "up")
    assert "train-000000.npz" not in [s["file"] for s in manifest.shards]
    load_received(tmp_path / "up")  # what is there is a consistent upload
    make_photos(photos, {"train/dog": 3})  # the owner fixes the file and runs again
    summary = encrypt_files([photos], tmp_path / "up", PE, shard_size=3, **SEED)
    assert (summary.written, summary.skipped, summary.errors) == (3, 7, [])
    assert Manifest.read(tmp_path / "up").counts == {"test": 3, "train": 7}


def test_images_of_another_size_need_size_and_files_that_cannot_go_into_a_shard_are_named(
    tmp_path, photos
):
    make_photos(photos, {"train/ant": 1}, size=(9, 5), seed=1)
    (photos / "loose.png").write_bytes((photos / "test" / "cat" / "00.png").read_bytes())
    summary = encrypt_files([photos], tmp_path / "up", PE, shard_size=3, **SEED)
    messages = sorted(str(error) for error in summary.errors)
    assert messages[0].startswith(str(photos / "loose.png")) and "class folder" in messages[0]
    assert messages[1].startswith(str(photos / "train" / "ant" / "00.png"))
    assert "5x9, but the upload's images are 8x6" in messages[1] and "--size" in messages[1]
    fitted = encrypt_files([photos], tmp_path / "fit", PE, shard_size=3, size=(4, 4), **SEED)
    assert fitted.written == 11 and Manifest.read(tmp_path / "fit").image_size == [4, 4]


@pytest.mark.slow
def test_a_run_killed_mid_way_and_run_again_writes_what_one_run_writes(tmp_path):
    """kill -9 of `keyless encrypt --workers 2` while it writes shards; the re-run completes
    the upload bit for bit as an uninterrupted run does, and leaves no temporary file."""
    photos = make_photos(tmp_path / "photos", {f"train/c{c}": 150 for c in range(4)},
                         size=(64, 64))  # fmt: skip
    args = [sys.executable, "-m", "keyless.cli", "encrypt", str(photos), "--keys", "seed",
            "--seed", "5", "--shard-size", "10", "--workers", "2", "--out"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.Popen([*args, str(tmp_path / "up")], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((tmp_path / "up").glob("*.npz")) and time.monotonic() < deadline:
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    time.sleep(0.5)  # its workers die with it (they must not write on)
    left = {p.name for p in (tmp_path / "up").iterdir()}
    assert 0 < len([n for n in left if n.endswith(".npz")]) < 60 and MANIFEST not in left
    assert {p.name for p in (tmp_path / "up").iterdir()} == left
    subprocess.run([*args, str(tmp_path / "up")], env=env, cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([*args[:-2], "1", "--out", str(tmp_path / "once")], env=env, cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    assert files(tmp_path / "up") == files(tmp_path / "once")
