import http.client
import io
import pickle
import shutil
import struct
import tarfile
import time
import urllib.request
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.data import (
    ImageSet,
    encrypt_dataset,
    fingerprint,
    load_npz,
    load_splits,
    read_image,
    save_npz,
)
from keyless.data._download import download_cifar10
from keyless.errors import ExitStatus, InputError
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


def _npy(array=None, header_shape=None):
    """An .npy member's bytes; ``header_shape`` makes its header claim another shape."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    if header_shape is None:
        return buffer.getvalue()
    claim = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": header_shape}
    np.lib.format.write_array_header_1_0(claim, header)
    return claim.getvalue() + array.tobytes()


def _crafted_npz(path, claim, compression=zipfile.ZIP_STORED):
    """An npz of 11 32x32 images (37 kB) whose x_train header claims shape ``claim``."""
    images = np.zeros((11, 32, 32, 3), np.uint8)
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("x_train.npy", _npy(images, claim))
        archive.writestr("y_train.npy", _npy(np.zeros(11, np.uint8)))
        archive.writestr("x_test.npy", _npy(images[:1]))
        archive.writestr("y_test.npy", _npy(np.zeros(1, np.uint8)))


def test_an_npz_header_that_claims_1e9_images_is_refused_before_any_allocation(tmp_path):
    _crafted_npz(tmp_path / "bomb.npz", (10**9, 32, 32, 3))
    assert 37_000 < (tmp_path / "bomb.npz").stat().st_size < 38_000
    started = time.monotonic()
    with pytest.raises(InputError) as error:
        load_npz(tmp_path / "bomb.npz")
    assert time.monotonic() - started < 5
    assert str(error.value).startswith(
        f"{tmp_path / 'bomb.npz'}: x_train claims a 1000000000x32x32x3 uint8 array "
        "(3,072,000,000,000 bytes), more than its 33,920 bytes can hold; a damaged or crafted file"
    )


def test_an_npz_member_whose_stated_size_lies_is_bounded_by_what_deflate_can_expand(tmp_path):
    claim = (20_000, 32, 32, 3)  # 61 MB: under the size the member states, once it lies
    _crafted_npz(tmp_path / "lie.npz", claim, zipfile.ZIP_DEFLATED)
    data = bytearray((tmp_path / "lie.npz").read_bytes())
    central = data.index(b"PK\x01\x02")  # x_train's entry in the central directory
    struct.pack_into("<I", data, central + 24, 2**31)  # its uncompressed size: 2 GiB
    (tmp_path / "lie.npz").write_bytes(data)
    words = r"lie\.npz: x_train claims a 20000x32x32x3 uint8 array \(61,440,000 bytes\), more "
    with pytest.raises(InputError, match=words + r"than its [\d,]+ bytes can hold"):
        load_npz(tmp_path / "lie.npz")


def test_encrypt_refuses_a_crafted_npz_in_one_line_and_still_does_the_others(tmp_path):
    _crafted_npz(tmp_path / "bomb.npz", (10**9, 32, 32, 3))
    save_npz(tmp_path / "good.npz", _splits())
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "bomb.npz"),
                                       str(tmp_path / "good.npz"), "--out", str(tmp_path / "out"),
                                       "--keys", "seed", "--seed", "1"])  # fmt: skip
    assert result.exit_code == ExitStatus.BAD_INPUT, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
    assert len(errors) == 1 and "bomb.npz: x_train claims a 1000000000x32x32x3" in errors[0]
    assert (tmp_path / "out" / "good.npz").exists() and not (tmp_path / "out" / "bomb.npz").exists()


@pytest.mark.parametrize(
    ("x_test", "message"),
    [
        (np.zeros((1, 8, 8, 3), np.uint8), "images of one data set must have one size, got "
                                           "train 4x4, test 8x8; resize them"),
        (np.zeros((1, 0, 4, 3), np.uint8), "the test images are 4x0 pixels; an image needs some"),
        (np.zeros((0, 8, 8, 3), np.uint8), None),  # an empty split has no size to disagree
    ],
)  # fmt: skip
def test_an_npz_of_mixed_or_empty_image_sizes_is_one_line_naming_it(tmp_path, x_test, message):
    splits = _splits()
    path = tmp_path / "d.npz"
    np.savez(path, x_train=splits["train"].images.numpy(), y_train=splits["train"].labels.numpy(),
             x_test=x_test, y_test=np.zeros(len(x_test), np.uint8))  # fmt: skip
    if message is None:
        assert len(load_splits(path)["test"]) == 0
        return
    with pytest.raises(InputError) as error:
        load_splits(path)
    assert str(error.value) == f"{path}: {message}"


def test_image_folders_of_mixed_sizes_name_the_file_or_the_folder(tmp_path):
    for split, cls, name, side in [("train", "cat", "a.png", 4), ("train", "dog", "b.png", 4),
                                   ("test", "cat", "c.png", 8)]:  # fmt: skip
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (side, side)).save(tmp_path / split / cls / name)
    with pytest.raises(InputError) as error:
        load_splits(tmp_path)
    assert str(error.value) == (f"{tmp_path}: images of one data set must have one size, got "
                                "train 4x4, test 8x8; resize them")  # fmt: skip
    Image.new("RGB", (4, 6)).save(tmp_path / "train" / "dog" / "c.png")
    with pytest.raises(InputError) as error:
        load_splits(tmp_path / "train")
    assert str(error.value) == (f"{tmp_path / 'train' / 'dog' / 'c.png'}: 4x6 pixels, but "
                                f"{tmp_path / 'train' / 'cat' / 'a.png'} has 4x4; the images of a "
                                "data set must have one size (resize them)")  # fmt: skip
