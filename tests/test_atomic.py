import os

import pytest

from keyless._atomic import atomic_path, write_bytes_atomic


def test_atomic_write_has_normal_permissions_unless_told(tmp_path):
    umask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "report.md", b"x")
        write_bytes_atomic(tmp_path / "secret.key", b"k", mode=0o600)
    finally:
        os.umask(umask)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.png") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_folders_made_for_an_owner_only_file_are_owner_only_and_others_keep_their_mode(tmp_path):
    os.chmod(tmp_path, 0o1777)  # a shared folder already there, like /tmp
    umask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a" / "b" / "plain.png", b"p", mode=0o600)
        write_bytes_atomic(tmp_path / "c" / "d" / "report.md", b"r")
    finally:
        os.umask(umask)
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o7777
             for p in tmp_path.rglob("*")}  # fmt: skip
    assert modes == {"a": 0o700, "a/b": 0o700, "a/b/plain.png": 0o600,
                     "c": 0o755, "c/d": 0o755, "c/d/report.md": 0o644}  # fmt: skip
    assert tmp_path.stat().st_mode & 0o7777 == 0o1777
