import http.client
import io
import pickle
import shutil
import tarfile
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from keyless.data import (
    ImageSet,
    encrypt_dataset,
    fingerprint,
    load_splits,
    read_image,
    save_npz,
)
from keyless.data._download import download_cifar10
from keyless.errors import InputError
from keyless.keys import SeedSource


def _splits(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        s: ImageSet(
            torch.from_numpy(rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)),
            torch.from_numpy(rng.integers(0, 10, n)),
            tuple("abcdefghij"),
        )
        for s in ("train", "test")
    }


def test_npz_round_trip(tmp_path):
    splits = _splits()
    save_npz(tmp_path / "d.npz", splits)
    back = load_splits(tmp_path / "d.npz")
    for s in splits:
        assert torch.equal(back[s].images, splits[s].images)
        assert torch.equal(back[s].labels, splits[s].labels)


def test_a_file_that_is_no_dataset_is_one_line_and_npz_suffixes_ignore_case(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.png")
    with pytest.raises(InputError, match=r"photo\.png: not a dataset \(an npz, a CIFAR-10 "):
        load_splits(tmp_path / "photo.png")
    save_npz(tmp_path / "D.NPZ", _splits())
    assert torch.equal(load_splits(tmp_path / "D.NPZ")["test"].labels, _splits()["test"].labels)


def test_npz_without_expected_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((1, 2, 2, 3), np.uint8))
    with pytest.raises(
        InputError, match=r"must hold exactly x_train, y_train, x_test, y_test; found x_train$"
    ):
        load_splits(tmp_path / "bad.npz")


def test_cifar_python_archive(tmp_path):
    rng = np.random.default_rng(1)
    members = {f"data_batch_{i}": 2 for i in range(1, 6)} | {"test_batch": 3}
    expected = {
        name: rng.integers(0, 256, (n, 3072), dtype=np.uint8) for name, n in members.items()
    }
    batches = {name: pickle.dumps({b"data": rows, b"labels": list(range(len(rows)))}, protocol=2)
               for name, rows in expected.items()}  # fmt: skip
    _archive(tmp_path / "cifar-10-python.tar.gz", batches)
    splits = load_splits(tmp_path / "cifar-10-python.tar.gz")
    assert splits["train"].images.shape == (10, 32, 32, 3)
    first = expected["data_batch_1"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(splits["train"].images[0].numpy(), first)
    assert splits["test"].labels.tolist() == [0, 1, 2]


def test_image_folder_with_train_and_test(tmp_path):
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / split / cls / "a.png")
    splits = load_splits(tmp_path)
    assert splits["train"].classes == ("cat", "dog")
    assert splits["test"].labels.tolist() == [0, 1]
    shutil.rmtree(tmp_path / "test" / "cat")  # a test split without the first class
    splits = load_splits(tmp_path)
    assert splits["test"].classes == ("cat", "dog") and splits["test"].labels.tolist() == [1]
    (tmp_path / "test" / "emu").mkdir()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "test" / "emu" / "a.png")
    with pytest.raises(InputError, match=r"test: class folders \['emu'\] are not among the "):
        load_splits(tmp_path)


class _Images(torch.utils.data.Dataset):
    def __init__(self, float_images=False):
        self.x = torch.randint(0, 256, (5, 6, 6, 3), dtype=torch.uint8)
        self.float_images = float_images

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return (self.x[i].float() if self.float_images else self.x[i].numpy()), i


def test_encrypt_dataset_fixed_and_fresh_keys():
    data = _Images()
    fixed = encrypt_dataset(data)
    image, label = fixed[2]
    assert label == 2 and image.dtype == torch.uint8
    assert torch.equal(fixed[2][0], image)  # the same key for the life of the wrapper
    assert not torch.equal(encrypt_dataset(data)[2][0], image)  # another wrapper, other keys
    fresh = encrypt_dataset(data, fresh_keys=True, transform=lambda t: t.float() / 255)
    assert not torch.equal(fresh[2][0], fresh[2][0])
    seeded = [encrypt_dataset(data, source=SeedSource(1))[3][0] for _ in range(2)]
    assert torch.equal(*seeded)


def test_seeded_fresh_keys_differ_across_dataloader_workers_and_epochs(monkeypatch):
    """Each worker holds a copy of the wrapper, counter included; its torch seed tells them
    apart (a new one per worker and per epoch)."""
    wrapper = encrypt_dataset(_Images(), source=SeedSource(1), fresh_keys=True)
    seen = []
    for worker_seed in (10, 11, 12):  # two workers of epoch 1, one of epoch 2
        copy = pickle.loads(pickle.dumps(wrapper))
        monkeypatch.setattr(
            torch.utils.data, "get_worker_info", lambda s=worker_seed: SimpleNamespace(seed=s)
        )
        seen += [copy[0][0] for _ in range(2)]
    assert len({bytes(image.flatten().tolist()) for image in seen}) == len(seen)
    monkeypatch.undo()
    again = pickle.loads(pickle.dumps(wrapper))
    assert torch.equal(again[0][0], pickle.loads(pickle.dumps(wrapper))[0][0])  # reproducible


def test_encrypt_dataset_refuses_float_images_up_front():
    with pytest.raises(InputError, match=r"move ToTensor/Normalize"):
        encrypt_dataset(_Images(float_images=True))


def _archive(path, batches):
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


class _RunsCode:
    def __reduce__(self):
        import os

        return os.system, ("touch ran",)


@pytest.mark.parametrize(
    "payload",
    [
        _RunsCode(),
        [1, 2],
        b"\x80\x02truncated",
        {b"data": np.zeros((1, 100), np.uint8), b"labels": [0]},  # not 3x32x32 values
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},  # a label short
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]},  # no such class
    ],
)
def test_cifar_archive_that_is_no_batch_is_refused_without_running_code(
    tmp_path, payload, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    blob = payload if isinstance(payload, bytes) else pickle.dumps(payload, protocol=2)
    good = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2)
    batches = {"data_batch_1": blob} | {f"data_batch_{i}": good for i in range(2, 6)}
    _archive(tmp_path / "c.tar.gz", batches | {"test_batch": good})
    with pytest.raises(InputError, match=r"^data_batch_1: not a CIFAR-10 batch") as error:
        load_splits(tmp_path / "c.tar.gz")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "ran").exists()


def _stl10_archive(path, n_train=3, n_test=2):
    """A small archive in STL-10's binary layout: column-major 3x96x96 images, labels 1..10."""
    rng = np.random.default_rng(7)
    images = {s: rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
              for s, n in (("train", n_train), ("test", n_test))}  # fmt: skip
    members = {}
    for split, x in images.items():
        members[f"{split}_X.bin"] = x.transpose(0, 3, 2, 1).tobytes()  # HWC -> column-major CWH
        members[f"{split}_y.bin"] = (np.arange(len(x)) % 10 + 1).astype(np.uint8).tobytes()
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"stl10_binary/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    import hashlib

    return images, {name: hashlib.md5(blob).hexdigest() for name, blob in members.items()}


def test_stl10_binary_archive_is_read_in_its_layout_and_checked(tmp_path):
    from keyless.data import load_stl10

    archive = tmp_path / "stl10_binary.tar.gz"
    images, checksums = _stl10_archive(archive)
    splits = load_stl10(archive, checksums)
    assert splits["train"].images.shape == (3, 96, 96, 3)
    assert np.array_equal(splits["train"].images.numpy(), images["train"])
    assert splits["test"].labels.tolist() == [0, 1] and splits["test"].classes[0] == "airplane"
    with pytest.raises(InputError, match=r"train_X\.bin checksum mismatch"):
        load_splits(archive)  # the official checksums: this is not the real STL-10
    with pytest.raises(InputError, match=r"lacks train_X\.bin"):
        load_stl10(tmp_path, checksums)  # a folder without the members


def test_max_pixels_is_the_limit_not_pillows_warning_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above 100, fails above 200
    image = np.arange(12 * 12 * 3, dtype=np.uint8).reshape(12, 12, 3)  # 144 pixels
    Image.fromarray(image).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png", max_pixels=1000), image)
    with pytest.raises(InputError, match="12x12 = 144 pixels exceeds the limit of 143"):
        read_image(tmp_path / "a.png", max_pixels=143)
    Image.fromarray(np.zeros((15, 15, 3), np.uint8)).save(tmp_path / "b.png")  # 225 pixels
    with pytest.raises(InputError, match="refused as a decompression bomb"):
        read_image(tmp_path / "b.png", max_pixels=1000)


class _DroppedResponse(io.BytesIO):
    """A response whose connection drops after the headers."""

    def __init__(self):
        super().__init__()
        self.headers = {"Content-Length": "100"}

    def read(self, size=-1):
        raise http.client.IncompleteRead(b"partial", 90)


@pytest.mark.parametrize("error", [OSError("no route to host"), None])
def test_a_failed_download_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, error):
    def urlopen(url, timeout):
        if error is not None:
            raise error
        return _DroppedResponse()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(InputError, match=r"^cannot download CIFAR-10 from .*pass --data") as info:
        download_cifar10(tmp_path)
    assert "\n" not in str(info.value) and not list(tmp_path.iterdir())


def test_fingerprint_follows_the_pixels_and_labels_not_the_file(tmp_path):
    images = torch.arange(6 * 12, dtype=torch.uint8).view(6, 2, 2, 3)
    splits = {"train": ImageSet(images[:4], torch.arange(4), ("a",)),
              "test": ImageSet(images[4:], torch.arange(2), ("a",))}  # fmt: skip
    save_npz(tmp_path / "d.npz", splits)
    assert fingerprint(load_splits(tmp_path / "d.npz")) == fingerprint(splits)
    pixel = {**splits, "test": ImageSet(splits["test"].images.clone(), torch.arange(2), ("a",))}
    pixel["test"].images[1, 1, 1, 2] = 2
    label = {**splits, "test": ImageSet(splits["test"].images, torch.tensor([1, 0]), ("a",))}
    assert len({fingerprint(s) for s in (splits, pixel, label)}) == 3
