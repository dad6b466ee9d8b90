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


def test_a_name_as_long_as_the_file_system_allows_is_written(tmp_path):
    from keyless._atomic import NAME_MAX, temp_prefix

    for length in (1, 241, 242, NAME_MAX):
        name = "é" * (length // 2) + "n" * (length % 2)  # 2 bytes a character in UTF-8
        assert len(os.fsencode(temp_prefix(name))) + len("abcdefgh.tmp") <= NAME_MAX
        write_bytes_atomic(tmp_path / name, b"x")
        assert (tmp_path / name).read_bytes() == b"x"
    assert temp_prefix("a.png") == ".a.png."  # short names keep the readable form
    assert temp_prefix("a" * 250) != temp_prefix("a" * 249 + "b")  # long ones their own hash


def test_leftovers_of_the_given_outputs_are_removed_and_nothing_else(tmp_path):
    from keyless._atomic import remove_leftovers, temp_prefix

    long = "m" * 251 + ".png"
    (tmp_path / "sub").mkdir()
    mine = [".a.png.x1y2z3_4.tmp", f"sub/{temp_prefix(long)}abcdefgh.tmp"]
    others = [".b.png.x1y2z3_4.tmp", ".a.png.toolong123.tmp", ".a.png.x1y2z3_4.tmp.bak", "a.png"]
    for name in mine + others:
        (tmp_path / name).write_bytes(b"")
    targets = [tmp_path / "a.png", tmp_path / "sub" / long, tmp_path / "gone" / "c.png"]
    assert remove_leftovers(tmp_path, targets) == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == sorted(
        others
    )


def test_a_failed_write_names_the_file_not_its_temporary(tmp_path):
    with pytest.raises(OSError) as failed, atomic_path(tmp_path / "out.png") as tmp:
        raise OSError(28, "No space left on device")  # as a full disk's write says it
    assert failed.value.filename == str(tmp_path / "out.png") and not tmp.exists()
    with pytest.raises(OSError) as failed, atomic_path(tmp_path / "out.png") as tmp:
        raise OSError(27, "File too large", str(tmp))
    assert failed.value.filename == str(tmp_path / "out.png")
