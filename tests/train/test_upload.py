"""The real deployment: the owner encrypts with CSPRNG keys, the cloud trains on the upload."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.data import read_image
from tests.synthetic import quadrant_splits


def _photo_folders(root):
    """train/ and test/ folders of class sub-folders of PNGs (classes survive PE)."""
    plain = []
    for split, data in quadrant_splits(n_train=320, n_test=200).items():
        labels = data.labels.tolist()
        for i, (image, label) in enumerate(zip(data.images.numpy(), labels, strict=True)):
            path = root / split / data.classes[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
            plain.append(image)
    return plain


def _train(*args):
    base = ["train", "--model", "fastnet", "--widths", "16,32,32", "--batch-size", "64",
            "--seed", "0", "--precision", "fp32", "--stem", "invariant"]  # fmt: skip
    return CliRunner().invoke(main, [*base, *map(str, args)])


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
                                      str(tmp_path / "upload")])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == pytest.approx(record["test"])
    # the cloud's folders hold no plain image and no key
    cloud = [p for folder in ("upload", "run") for p in (tmp_path / folder).rglob("*")]
    assert not [p for p in cloud if p.suffix == ".key"]
    seen = {read_image(p).tobytes() for p in cloud if p.suffix == ".png"}
    assert seen and not seen & {image.tobytes() for image in plain}
    blobs = b"".join(p.read_bytes() for p in cloud if p.is_file() and p.suffix != ".png")
    assert not any(image[:4].tobytes() in blobs for image in plain[:20])  # 4 rows of raw pixels


def test_options_that_need_plain_images_or_keys_are_refused_for_an_upload(tmp_path):
    _photo_folders(tmp_path / "photos")
    CliRunner().invoke(main, ["encrypt", str(tmp_path / "photos"), "--out", str(tmp_path / "up")])
    for extra, words in ((["--keys", "common"], "holds independent-key ciphertexts"),
                         (["--augment", "client"], "needs the owner's plain images")):  # fmt: skip
        result = _train("--data", tmp_path / "up", "--epochs", "1", "--out", tmp_path / "r", *extra)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.output
        assert not (tmp_path / "r").exists()
    next((tmp_path / "up" / "train").rglob("*.png")).unlink()  # a file lost on the way
    result = _train("--data", tmp_path / "up", "--epochs", "1", "--out", tmp_path / "r")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "the files do not match keyless.json" in lines[0] and not (tmp_path / "r").exists()


def test_an_encrypted_npz_upload_is_read_as_its_splits(tmp_path):
    splits = quadrant_splits(n_train=64, n_test=16)
    np.savez(tmp_path / "d.npz", **{f"x_{s}": d.images.numpy() for s, d in splits.items()},
             **{f"y_{s}": d.labels.numpy() for s, d in splits.items()})  # fmt: skip
    CliRunner().invoke(main, ["encrypt", str(tmp_path / "d.npz"), "--out", str(tmp_path / "up")])
    result = _train("--data", tmp_path / "up", "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["train_images"] == 64 and record["upload"]["counts"] == {"train": 64, "test": 16}
