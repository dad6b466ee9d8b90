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
