"""Key files are read with a bound: /dev/zero or a huge file is one line naming it, at once and
in little memory, for every kind of key."""

import time
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cipher import create_cipher, list_ciphers
from keyless.cipher._base import MAX_SIDE
from keyless.cli import main
from keyless.errors import ExitStatus, KeyMaterialError


def _refusal(cipher, path):
    """The error loading ``path`` as ``cipher``'s key, the seconds it took and the most memory
    Python held meanwhile."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyMaterialError) as error:
            cipher.load_key(path)
        return str(error.value), time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list_ciphers())
def test_dev_zero_as_a_key_is_one_line_at_once(name):
    message, seconds, peak = _refusal(create_cipher(name), "/dev/zero")
    assert message.startswith("/dev/zero: not a keyless ") and "\n" not in message
    assert seconds < 5 and peak < 2**20


@pytest.mark.parametrize("name", list_ciphers())
def test_a_key_file_larger_than_any_key_is_refused_before_it_is_read(name, tmp_path):
    cipher = create_cipher(name)
    key = cipher.keygen(1, (8, 8))
    kind = type(key)
    huge = tmp_path / "huge.key"
    with huge.open("wb") as file:  # sparse, with the right header
        file.write(key.to_bytes())
        file.truncate(kind.max_file_bytes() + 1)
    message, seconds, peak = _refusal(cipher, huge)
    assert message == f"{huge}: not a keyless key file (over {kind.max_file_bytes():,} bytes)"
    assert seconds < 5 and peak < 2**20
    key.save(tmp_path / "small.key")  # a real key file is far inside the bound
    assert cipher.load_key(tmp_path / "small.key").to_bytes() == key.to_bytes()


def test_the_bound_holds_a_common_key_for_the_largest_image():
    cipher = create_cipher("pe")
    small = len(cipher.keygen(1, (16, 16)).to_bytes())
    largest = small - 16 * 16 + MAX_SIDE**2  # the same file for MAX_SIDE x MAX_SIDE images
    assert largest <= type(cipher.keygen(1, (1, 1))).max_file_bytes()


@pytest.mark.parametrize("keys", ["master-key", "common"])
def test_encrypt_with_dev_zero_as_its_key_is_one_line(keys, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    started = time.monotonic()
    result = CliRunner().invoke(
        main, ["encrypt", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--keys", keys,
               "--key-file", "/dev/zero"],
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.exit_code == ExitStatus.BAD_KEY, result.output
    assert result.stderr.startswith("keyless: error: /dev/zero: not a keyless ")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out" / "a.png").exists()
