"""The real deployment: the owner encrypts with CSPRNG keys, the cloud trains on the upload."""

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import keyless
from keyless.cipher import create_cipher
from keyless.cli import main
from keyless.data import read_image
from keyless.errors import ConfigError, ExitStatus
from keyless.train import recipe, train
from keyless.upload import MANIFEST
from tests.serve.conftest import expected_labels, serving
from tests.synthetic import quadrant_splits, save_quadrant_npz


def _photo_folders(root, n_train=320, n_test=200):
    """train/ and test/ folders of class sub-folders of PNGs (classes survive PE); the refusal
    tests take fewer (each PNG is written, encrypted and copied)."""
    plain = []
    for split, data in quadrant_splits(n_train, n_test).items():
        labels = data.labels.tolist()
        for i, (image, label) in enumerate(zip(data.images.numpy(), labels, strict=True)):
            path = root / split / data.classes[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
            plain.append(image)
    return plain


def _train(*args):
    """The train command on the CPU, where the tests that compare results bit for bit run."""
    base = ["train", "--model", "fastnet", "--widths", "16,32,32", "--batch-size", "64", "--seed",
            "0", "--precision", "fp32", "--stem", "invariant", "--device", "cpu"]  # fmt: skip
    return CliRunner().invoke(main, [*base, *map(str, args)])


@pytest.mark.slow
def test_the_cloud_trains_on_an_upload_it_cannot_read(tmp_path):
    plain = _photo_folders(tmp_path / "photos")
    assert CliRunner().invoke(main, ["encrypt", str(tmp_path / "photos"), "--out",
                                     str(tmp_path / "upload")]).exit_code == 0  # fmt: skip
    result = _train("--data", tmp_path / "upload", "--epochs", "10", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    chance_plus_5_se = 0.25 + 5 * (0.25 * 0.75 / 200) ** 0.5
    assert record["test"]["upload"] > chance_plus_5_se, record["test"]
    assert record["test"]["upload_rekeyed"] == record["test"]["upload"]  # invariant stem
    assert "plain" not in record["test"] and record["data"].startswith("ciphertexts")
    assert "no owner key ever reached this run" in record["keys_note"]
    assert record["upload"]["keys"] == "independent" and record["config"]["cipher"]["name"] == "pe"
    again = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--data",
                                      str(tmp_path / "upload"), "--device", "cpu"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == pytest.approx(record["test"])
    # serving closes the loop: a client sends plain images and fresh-key ciphertexts
    photos = sorted((tmp_path / "photos" / "test").rglob("*.png"))[::25]
    wanted = expected_labels(tmp_path / "run", np.stack([read_image(p) for p in photos]))
    with serving(tmp_path / "run", tmp_path / "serve.log") as url:  # 16x16, from the checkpoint
        model = httpx.get(f"{url}/v1/model").json()
        for flags in ((), ("--plain",)):
            result = CliRunner().invoke(main, ["classify", *map(str, photos), "--server", url,
                                               *flags])  # fmt: skip
            assert result.exit_code == 0, result.output
            labels = [int(line.split()[1]) for line in result.stdout.splitlines()[1:]]
            assert labels == wanted
    assert model["cipher"]["name"] == "pe" and model["keys"] == "independent"
    assert model["accepts"] == {"fresh_key_ciphertexts": record["test"]["upload_rekeyed"],
                                "plain_images": record["test"]["upload_rekeyed"]}  # fmt: skip
    # the cloud's folders hold no plain image and no key
    cloud = [p for folder in ("upload", "run") for p in (tmp_path / folder).rglob("*")]
    assert not [p for p in cloud if p.suffix == ".key"]
    seen = {read_image(p).tobytes() for p in cloud if p.suffix == ".png"}
    assert seen and not seen & {image.tobytes() for image in plain}
    blobs = b"".join(p.read_bytes() for p in cloud if p.is_file() and p.suffix != ".png")
    assert not any(image[:4].tobytes() in blobs for image in plain[:20])  # 4 rows of raw pixels


def test_options_that_need_plain_images_or_keys_are_refused_for_an_upload(tmp_path):
    _photo_folders(tmp_path / "photos", n_train=16, n_test=8)
    CliRunner().invoke(main, ["encrypt", str(tmp_path / "photos"), "--out", str(tmp_path / "up")])
    for extra, words in ((["--keys", "common"], "holds independent-key ciphertexts"),
                         (["--cipher", "le"], "np_per=component): --cipher le (block_size=4"),
                         (["--augment", "client"], "needs the owner's plain images")):  # fmt: skip
        result = _train("--data", tmp_path / "up", "--epochs", "1", "--out", tmp_path / "r", *extra)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.output
        assert not (tmp_path / "r").exists()
    next((tmp_path / "up" / "train").rglob("*.png")).unlink()  # a file lost on the way
    result = _train("--data", tmp_path / "up", "--epochs", "1", "--out", tmp_path / "r")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == ExitStatus.BAD_INPUT and len(lines) == 1, result.output
    assert "the files do not match keyless.json" in lines[0] and not (tmp_path / "r").exists()


def test_the_library_refuses_a_cipher_other_than_the_uploads_naming_both(tmp_path):
    """As for the key mode: the run's cipher must be the upload's, never silently replaced."""
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    encrypt = ["encrypt", str(tmp_path / "d.npz"), "--out", str(tmp_path / "up"), "--cipher", "le"]
    assert CliRunner().invoke(main, encrypt).exit_code == 0
    for cipher in (create_cipher("pe"), create_cipher("le", block_size=2)):
        config = recipe("fast", epochs=1, cipher=cipher)
        with pytest.raises(ConfigError) as refused:
            train(config, tmp_path / "up", tmp_path / "run", device="cpu")
        message = str(refused.value)
        assert message.startswith("the upload holds ciphertexts of cipher le (block_size=4, ")
        assert f"--cipher {cipher.name} (" in message and "\n" not in message
        assert refused.value.exit_code == ExitStatus.USAGE and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_keeps_to_the_upload_it_trained_on(tmp_path):
    _photo_folders(tmp_path / "photos")
    up, run, key = tmp_path / "up", tmp_path / "run", tmp_path / "shared.key"
    encrypt = [
        "encrypt",
        str(tmp_path / "photos"),
        "--out",
        str(up),
        "--keys",
        "common",
        "--key-file",
        str(key),
    ]
    assert CliRunner().invoke(main, encrypt).exit_code == 0
    assert _train("--data", up, "--keys", "common", "--epochs", "1", "--out", run).exit_code == 0
    record = json.loads((run / "record.json").read_text())
    # a second run into the folder, or a resume on other data, is one line and changes nothing
    sha = record["upload"]["payload_sha256"]
    for extra, words in (([], "already holds a run: --resume continues it"),
                         (["--resume"], f"trained on the upload with payload sha256 {sha}, "
                                        "--data holds plain images")):  # fmt: skip
        result = _train("--data", tmp_path / "photos", "--keys", "common", "--epochs", "1",
                        "--out", run, *extra)  # fmt: skip
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == ExitStatus.BAD_INPUT, result.output
        assert len(lines) == 1 and words in lines[0], result.output
    assert json.loads((run / "record.json").read_text()) == record
    # the owner's common key never reached the cloud: on plain test images there is no
    # common-key test set to rebuild, and the upload's own split is the common-key column
    plain = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "photos")])
    assert plain.exit_code == 0, plain.output
    assert set(json.loads(plain.stdout)) == {"plain", "fresh_key", "plain_tta", "fresh_key_tta"}
    table = CliRunner().invoke(main, ["report", str(run), "--out", str(tmp_path / "t.md")])
    assert f"| {100 * record['test']['upload']:.2f} |" in table.stdout.split("| common | pe |")[1]


def test_rekeying_is_refused_for_a_balanced_upload(tmp_path):
    _photo_folders(tmp_path / "photos", n_train=16, n_test=8)
    encrypt = ["encrypt", str(tmp_path / "photos"), "--out", str(tmp_path / "up"),
               "--np-mode", "balanced"]  # fmt: skip
    assert CliRunner().invoke(main, encrypt).exit_code == 0
    result = _train("--data", tmp_path / "up", "--rekey", "--np-mode", "balanced", "--epochs", "1",
                    "--out", tmp_path / "r")  # fmt: skip
    assert result.exit_code == 2 and "keeps coin-flip keys" in result.stderr, result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_an_encrypted_npz_upload_is_read_as_its_splits(tmp_path):
    splits = quadrant_splits(n_train=64, n_test=16)
    np.savez(tmp_path / "d.npz", **{f"x_{s}": d.images.numpy() for s, d in splits.items()},
             **{f"y_{s}": d.labels.numpy() for s, d in splits.items()})  # fmt: skip
    CliRunner().invoke(main, ["encrypt", str(tmp_path / "d.npz"), "--out", str(tmp_path / "up")])
    result = _train("--data", tmp_path / "up", "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["train_images"] == 64 and record["upload"]["counts"] == {"train": 64, "test": 16}


def _sample_photo_folders(root, rng):
    """train/ and test/ class folders of real photos: each bundled 96x96 sample is a class,
    seen through random crops of an enlarged copy (larger than 96 and not square)."""
    samples = sorted((Path(keyless.__file__).parent / "samples").glob("*.png"))
    for sample in samples:
        big = Image.open(sample).convert("RGB").resize((136, 120), Image.Resampling.BICUBIC)
        for split, n in (("train", 24), ("test", 8)):
            (root / split / sample.stem).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = rng.integers(104, 136), rng.integers(100, 120)
                x, y = rng.integers(0, 137 - w), rng.integers(0, 121 - h)
                crop = big.crop((x, y, x + w, y + h))
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                crop.save(root / split / sample.stem / f"{i}.png")
    return samples


@pytest.mark.slow  # trains a model on 96x96 images
def test_real_photos_at_96x96_from_the_owner_to_a_client(tmp_path):
    samples = _sample_photo_folders(tmp_path / "photos", np.random.default_rng(0))
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "photos"), "--size", "96",
                                       "--out", str(tmp_path / "upload")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {read_image(p).shape for p in (tmp_path / "upload").rglob("*.png")} == {(96, 96, 3)}
    result = _train("--data", tmp_path / "upload", "--upload", "--epochs", "8", "--batch-size",
                    "32", "--out", tmp_path / "run")  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    chance_plus_5_se = 1 / 6 + 5 * (1 / 6 * 5 / 6 / 48) ** 0.5
    assert record["upload"]["image_size"] == [96, 96] and len(record["upload"]["classes"]) == 6
    assert record["test"]["upload"] > chance_plus_5_se, record["test"]
    originals = np.stack([read_image(p) for p in samples])
    wanted = expected_labels(tmp_path / "run", originals)
    with serving(tmp_path / "run", tmp_path / "serve.log") as url:  # 96x96, from the checkpoint
        for flags in ((), ("--plain",)):
            result = CliRunner().invoke(main, ["classify", *map(str, samples), "--server", url,
                                               *flags])  # fmt: skip
            assert result.exit_code == 0, result.output
            rows = [line.split() for line in result.stdout.splitlines()[1:]]
            assert [int(row[1]) for row in rows] == wanted


def _edit_manifest(folder, **changes):
    data = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**data, **changes}))


def _replace_first_png(folder):
    first = sorted((folder / "train").rglob("*.png"))[0]
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(first)


def _add_foreign_ciphertext(folder, other):
    """A file of another upload (LE ciphertexts) copied in: mixed ciphers."""
    source = next((other / "train").rglob("*.png"))
    shutil.copy(source, next((folder / "train").iterdir()) / "foreign.png")


BAD_UPLOADS = {  # how the upload is damaged, what --data is, and the words of the one line
    "missing manifest": (lambda up, _: (up / MANIFEST).unlink(), ".", "not an encrypted upload"),
    "damaged manifest": (
        lambda up, _: (up / MANIFEST).write_text("{"),
        ".",
        "not a keyless upload",
    ),
    "edited hash": (
        lambda up, _: _edit_manifest(up, payload_sha256="0" * 64),
        ".",
        "the files do not match keyless.json",
    ),
    "edited counts": (
        lambda up, _: _edit_manifest(up, counts={"train": 9, "test": 200}),
        ".",
        "does not describe these files (counts",
    ),
    "edited classes": (
        lambda up, _: _edit_manifest(up, classes=["w", "x", "y", "z"]),
        ".",
        "does not describe these files (classes",
    ),
    "edited size": (
        lambda up, _: _edit_manifest(up, image_size=[32, 32]),
        ".",
        "does not describe these files (image sizes",
    ),
    "a ciphertext replaced": (
        lambda up, _: _replace_first_png(up),
        ".",
        "the files do not match keyless.json",
    ),
    "mixed ciphers": (_add_foreign_ciphertext, ".", "the files do not match keyless.json"),
    "a sub-folder of an upload": (lambda up, _: None, "train", "part of the encrypted upload"),
    "a plain npz": (lambda up, _: None, "../plain.npz", "not an encrypted upload"),
}


@pytest.mark.parametrize("command", ["train", pytest.param("evaluate", marks=pytest.mark.slow)])
def test_bad_uploads_are_one_line_naming_the_file_and_write_nothing(tmp_path, command):
    _photo_folders(tmp_path / "photos", n_train=16, n_test=8)  # evaluate trains on them first
    for cipher in ("pe", "le"):
        CliRunner().invoke(main, ["encrypt", str(tmp_path / "photos"), "--cipher", cipher,
                                  "--out", str(tmp_path / f"up-{cipher}")])  # fmt: skip
    splits = quadrant_splits(n_train=64, n_test=16)
    np.savez(tmp_path / "plain.npz", **{f"x_{s}": d.images.numpy() for s, d in splits.items()},
             **{f"y_{s}": d.labels.numpy() for s, d in splits.items()})  # fmt: skip
    if command == "evaluate":
        assert _train("--data", tmp_path / "up-pe", "--epochs", "1", "--out",
                      tmp_path / "run").exit_code == 0  # fmt: skip
    for case, (damage, data, words) in BAD_UPLOADS.items():
        upload = tmp_path / case.replace(" ", "-")
        shutil.copytree(tmp_path / "up-pe", upload)
        damage(upload, tmp_path / "up-le")
        target = (upload / data).resolve() if data != "." else upload
        before = sorted(tmp_path.rglob("*"))
        if command == "train":
            result = _train("--data", target, "--upload", "--epochs", "1", "--out", upload / "r")
        else:
            result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--data",
                                               str(target), "--upload"])  # fmt: skip
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == ExitStatus.BAD_INPUT and len(lines) == 1, (case, result.output)
        assert words in lines[0] and str(target.parent if data == "train" else target) in lines[0]
        assert sorted(tmp_path.rglob("*")) == before, case  # nothing written
    again = CliRunner().invoke(main, ["encrypt", str(tmp_path / "photos"), "--cipher", "le",
                                      "--out", str(tmp_path / "up-pe")])  # fmt: skip
    assert again.exit_code == 2 and "encrypted with cipher pe (" in again.stderr


@pytest.mark.slow
def test_a_block_scrambled_noisy_upload_runs_from_encrypt_to_classify(tmp_path):
    """pe-scramble with owner noise, end to end: encrypt, train --upload, serve, classify."""
    from tests.synthetic import texture_images

    for split, n, seed in (("train", 256, 0), ("test", 64, 1)):
        data = texture_images(n, size=16, block=4, seed=seed)
        for i, (image, label) in enumerate(zip(data.images.numpy(), data.labels.tolist(),
                                               strict=True)):  # fmt: skip
            path = tmp_path / "photos" / split / data.classes[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
    setting = ["--cipher", "pe-scramble", "--block-size", "4", "--noise", "4"]
    encrypt = ["encrypt", str(tmp_path / "photos"), "--out", str(tmp_path / "upload"), *setting]
    assert CliRunner().invoke(main, encrypt).exit_code == 0
    manifest = json.loads((tmp_path / "upload" / MANIFEST).read_text())
    assert manifest["cipher"] == {"name": "pe-scramble", "shuffle": True, "np_mode": "coin",
                                  "np_per": "component", "noise": 4.0, "block_size": 4}  # fmt: skip
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "upload"), "--upload",
                                       "--recipe", "bag", "--widths", "8,16,16", "--batch-size",
                                       "64", "--epochs", "8", "--seed", "0", "--precision",
                                       "fp32", "--device", "cpu", "--out", str(run),
                                       *setting])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((run / "record.json").read_text())
    assert record["config"]["model"] == "bagnet" and record["config"]["stem"] == "key-invariant"
    assert record["test"]["upload"] > 0.25 + 5 * (0.25 * 0.75 / 64) ** 0.5, record["test"]
    assert record["test"]["upload_rekeyed"] == record["test"]["upload"]  # key-invariant
    photos = sorted((tmp_path / "photos" / "test").rglob("*.png"))
    truth = ["abcd".index(p.parent.name) for p in photos]
    wanted = expected_labels(run, np.stack([read_image(p) for p in photos]))
    with serving(run, tmp_path / "serve.log") as url:  # 16x16, from the checkpoint
        model = httpx.get(f"{url}/v1/model").json()
        assert model["cipher"]["noise"] == 4.0 and model["cipher"]["name"] == "pe-scramble"
        for flags in ((), ("--plain",)):
            result = CliRunner().invoke(main, ["classify", *map(str, photos), "--server", url,
                                               *flags])  # fmt: skip
            assert result.exit_code == 0, result.output
            labels = [int(line.split()[1]) for line in result.stdout.splitlines()[1:]]
            if flags:  # plain images: exactly the model's own answers
                assert labels == wanted
            else:  # the client adds the owner's noise, then scrambles under fresh keys
                correct = sum(a == b for a, b in zip(labels, truth, strict=True))
                assert correct > 0.25 * len(truth) + 5 * (0.1875 * len(truth)) ** 0.5
