import time
import tracemalloc

import pytest

from keyless.errors import KeyMaterialError
from keyless.keys import MASTER_MAGIC, CsprngSource, MasterKeySource, SeedSource, check_value


def test_master_key_file_round_trip_and_derivation(tmp_path):
    created = MasterKeySource.create(tmp_path / "m.key")
    loaded = MasterKeySource.load(tmp_path / "m.key")
    assert (tmp_path / "m.key").stat().st_mode & 0o777 == 0o600
    assert (created.stream("a").read(32) == loaded.stream("a").read(32)).all()
    assert not (loaded.stream("a").read(32) == loaded.stream("b").read(32)).all()


def test_master_key_needs_ids_and_valid_file(tmp_path):
    with pytest.raises(KeyMaterialError, match="image id"):
        MasterKeySource(bytes(32)).stream()
    (tmp_path / "bad").write_text("hello world\n")
    with pytest.raises(KeyMaterialError, match="not a keyless master key"):
        MasterKeySource.load(tmp_path / "bad")
    with pytest.raises(KeyMaterialError, match="cannot read"):
        MasterKeySource.load(tmp_path / "missing")


def test_no_image_key_shares_the_public_check_values_derivation():
    source = MasterKeySource(bytes(range(32)))
    # HKDF of the same info gives the check value as the first bytes of that id's AES key
    with pytest.raises(KeyMaterialError, match="the image id 'check-value' is reserved"):
        source.stream("check-value")
    assert len(source.stream("cat/check-value").read(4)) == 4  # another id: a key as any other


def test_seed_streams_repeat_per_id_and_advance_without():
    a, b = SeedSource(3), SeedSource(3)
    assert (a.stream("x").read(16) == b.stream("x").read(16)).all()
    assert (a.stream().read(16) == b.stream().read(16)).all()
    assert not (a.stream().read(16) == a.stream().read(16)).all()
    assert not (SeedSource(3).stream("x").read(16) == SeedSource(4).stream("x").read(16)).all()


def test_csprng_streams_differ():
    source = CsprngSource()
    assert not (source.stream("x").read(16) == source.stream("x").read(16)).all()


def _bounded(load, path):
    """``load(path)``'s error, with the time and the most memory Python held meanwhile."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyMaterialError) as error:
            load(path)
        return str(error.value), time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_master_key_of_dev_zero_or_a_huge_file_is_refused_quickly_in_little_memory(tmp_path):
    message, seconds, peak = _bounded(MasterKeySource.load, "/dev/zero")
    assert message == "/dev/zero: not a keyless master key file (over 4,096 bytes)"
    assert seconds < 5 and peak < 2**20
    huge = tmp_path / "huge.key"
    with huge.open("wb") as file:  # sparse: 1 TB on paper, nothing on disk
        file.write(f"{MASTER_MAGIC}\n".encode())
        file.truncate(2**40)
    message, seconds, peak = _bounded(MasterKeySource.load, huge)
    assert message == f"{huge}: not a keyless master key file (over 4,096 bytes)"
    assert seconds < 5 and peak < 2**20


def test_a_master_key_file_with_other_line_ends_still_loads(tmp_path):
    secret = bytes(range(32))
    (tmp_path / "m.key").write_bytes(f"  {MASTER_MAGIC}\r\n{secret.hex()}\r\n".encode())
    assert MasterKeySource.load(tmp_path / "m.key").check_value() == check_value(secret)
