"""Table-driven: odd inputs to the CLI, in-process; each gives one line and its exit status,
never a traceback, and nothing is written for it."""

import numpy as np
import pytest
from click.testing import CliRunner

from keyless.cli import main
from keyless.errors import ExitStatus

GOOD_X = np.zeros((2, 4, 4, 3), np.uint8)


def _npz(path, **arrays):
    base = {"x_train": GOOD_X, "y_train": np.array([0, 1]), "x_test": GOOD_X[:1],
            "y_test": np.array([1])}  # fmt: skip
    np.savez(path, **{k: v for k, v in (base | arrays).items() if v is not None})


NPZ_CASES = {
    "negative label": ({"y_test": np.array([-1])}, "labels must be 0 to 99999, got -1"),
    "label of 10^12": ({"y_train": np.array([10**12, 1])}, "labels must be 0 to 99999"),
    "NaN label": ({"y_train": np.array([np.nan, 1.0])}, "labels must be integers, got float64"),
    "float labels": ({"y_train": np.array([0.0, 1.0])}, "labels must be integers, got float64"),
    "string labels": ({"y_train": np.array(["a", "b"])}, "labels must be integers, got <U1"),
    "scalar label": ({"y_train": np.array(1)}, "with one label each in y_train"),
    "label count": ({"y_train": np.array([1])}, "with one label each in y_train"),
    "2-D labels": ({"y_train": np.zeros((2, 1), int)}, "with one label each in y_train"),
    "float images": ({"x_train": GOOD_X.astype(float)}, "must be (N, H, W, 3) uint8"),
    "grey images": ({"x_train": GOOD_X[..., 0]}, "must be (N, H, W, 3) uint8"),
    "4 channels": ({"x_test": np.zeros((1, 4, 4, 4), np.uint8)}, "must be (N, H, W, 3) uint8"),
    "missing array": ({"y_test": None}, "npz must hold exactly"),
    "extra array": ({"meta": np.zeros(2)}, "npz must hold exactly"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_bad_npz_is_one_line_and_nothing_is_written(tmp_path, case):
    arrays, message = NPZ_CASES[case]
    _npz(tmp_path / "bad.npz", **arrays)
    _assert_one_line(
        tmp_path, ["encrypt", str(tmp_path / "bad.npz")], ExitStatus.BAD_INPUT, message
    )


FILE_CASES = {
    "zero-byte npz": (b"", "not a readable npz file"),
    "text named npz": (b"hello", "not a readable npz file"),
    "npy named npz": (None, "a single .npy array"),
    "truncated zip": (b"PK\x03\x04trunc", "not a readable npz file"),
}


def test_npz_images_above_max_pixels_are_refused_before_they_are_decompressed(tmp_path):
    big = np.zeros((1, 300, 400, 3), np.uint8)  # 1.3 kB compressed, 360 kB in memory
    np.savez_compressed(tmp_path / "bomb.npz", x_train=big, y_train=np.array([0]),
                        x_test=big[:0], y_test=np.array([], np.int64))  # fmt: skip
    args = ["encrypt", str(tmp_path / "bomb.npz"), "--max-pixels", "100000"]
    message = "x_train images are 400x300 = 120000 pixels, above the limit of 100000"
    _assert_one_line(tmp_path, args, ExitStatus.BAD_INPUT, message)


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_broken_npz_file_is_one_line(tmp_path, case):
    content, message = FILE_CASES[case]
    path = tmp_path / "bad.npz"
    if content is None:
        with path.open("wb") as f:
            np.save(f, np.zeros(3))
    else:
        path.write_bytes(content)
    _assert_one_line(tmp_path, ["encrypt", str(path)], ExitStatus.BAD_INPUT, message)


def _png16(path, w=4, h=4):
    """A 16-bit RGB PNG (Pillow opens it as 8-bit RGB, cutting the low bytes)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes(range(6 * w)) for _ in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def _frames(path):
    from PIL import Image

    frames = [Image.new("RGB", (4, 4), (50 * i, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])


IMAGE_CASES = {
    "16-bit RGB PNG": ("a.png", _png16, "more than 8 bits per value"),
    "16-bit PPM": ("a.ppm", lambda p: p.write_bytes(b"P6\n2 2\n65535\n" + bytes(24)),
                   "more than 8 bits per value"),
    "animated GIF": ("a.gif", _frames, "3 frames"),
    "multi-page TIFF": ("a.tiff", _frames, "3 frames"),
    "empty PNG": ("a.png", lambda p: p.write_bytes(b""), "empty file"),
    "text named PNG": ("a.png", lambda p: p.write_text("hello"), "not an image file"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_image_that_would_lose_data_is_refused_and_good_ones_still_encrypted(tmp_path, case):
    from PIL import Image

    name, make, message = IMAGE_CASES[case]
    (tmp_path / "in").mkdir()
    make(tmp_path / "in" / name)
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "in" / "good.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out", str(out)])
    assert result.exit_code == ExitStatus.BAD_INPUT and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["good.png", "keyless.json"]


@pytest.mark.parametrize(
    ("size", "message"),
    [("-5x3", "sides must be 1 to 16384"), ("0x4", "sides must be 1 to 16384"),
     ("1000000x1000000", "sides must be 1 to 16384"), ("32y", "expected HxW"),
     ("axb", "expected HxW"), ("3x3x3", "expected HxW")],
)  # fmt: skip
def test_keygen_size_out_of_range_is_a_usage_error(tmp_path, size, message):
    args = ["keygen", "--kind", "common", "--size", size, "--out", str(tmp_path / "out" / "k")]
    _assert_one_line(tmp_path, args, ExitStatus.USAGE, message, usage=True)


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "ftp://x", "::"])
def test_classify_with_an_unusable_server_url(tmp_path, url):
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    _assert_one_line(
        tmp_path, ["classify", "--server", url, str(tmp_path / "a.png")], ExitStatus.SERVICE, url
    )


def _assert_one_line(tmp_path, args, code, message, usage=False):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    if args[0] == "encrypt":
        args = [*args, "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if usage:  # click's usage errors: usage, hint, then the one error line
        lines = [line for line in lines if line.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    after = sorted(p.name for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before] in ([], ["out"])  # out/ at most, and empty:
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _image(path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)


def test_symlink_loop_and_unlistable_folder_are_reported_and_the_rest_encrypted(
    tmp_path, monkeypatch
):
    import os

    _image(tmp_path / "in" / "a" / "x.png")
    _image(tmp_path / "in" / "locked" / "y.png")
    (tmp_path / "in" / "a" / "up").symlink_to("..")  # a loop, if links were followed
    scandir = os.scandir

    def refuse_locked(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out",
                                       str(tmp_path / "out")])  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
    assert result.exit_code == ExitStatus.BAD_INPUT and len(errors) == 1, result.stderr
    assert "locked: cannot list this folder (Permission denied)" in errors[0]
    assert [p.name for p in (tmp_path / "out").rglob("*.png")] == ["x.png"]


def test_out_inside_an_input_folder_is_refused(tmp_path):
    _image(tmp_path / "in" / "x.png")
    for out in (tmp_path / "in", tmp_path / "in" / "enc"):
        result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out", str(out)])
        errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
        assert result.exit_code == ExitStatus.USAGE and len(errors) == 1
        assert "inside the input folder" in errors[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in", "x.png"]  # nothing written


def test_classify_with_no_image_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    args = ["classify", "--server", "http://127.0.0.1:9", str(tmp_path / "empty")]
    _assert_one_line(tmp_path, args, ExitStatus.BAD_INPUT, "no image files to classify")


def test_a_file_name_that_is_not_utf8_keeps_its_key(tmp_path):
    import os

    raw = os.fsdecode(b"\xff\xfe.png")  # a Latin-1 era name: not UTF-8
    _image(tmp_path / "in" / raw)
    runner = CliRunner()
    for command, src, dst in (("encrypt", "in", "enc"), ("decrypt", "enc", "dec")):
        result = runner.invoke(main, [command, str(tmp_path / src), "--out", str(tmp_path / dst),
                                      "--keys", "seed", "--seed", "3"])  # fmt: skip
        assert result.exit_code == 0, result.output
    from keyless.data import read_image

    assert (read_image(tmp_path / "dec" / raw) == [1, 2, 3]).all()
    assert not (read_image(tmp_path / "enc" / raw) == [1, 2, 3]).all()


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path):
    """kill and Ctrl-C both end a command with KeyboardInterrupt (see the INTERRUPTED exit
    status): the half-written output is removed."""
    from keyless._atomic import atomic_path

    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "out.png") as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def _odd_files(folder):
    """Many distinct bad image files: every format cut short at several points, formats in modes
    PE cannot take, and noise under every image suffix. Returns {name: expected words}."""
    import io as _io

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    for fmt, suffix in [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("GIF", ".gif"),
                        ("TIFF", ".tif"), ("WEBP", ".webp"), ("PPM", ".ppm")]:  # fmt: skip
        buffer = _io.BytesIO()
        picture.save(buffer, format=fmt)
        data = buffer.getvalue()
        for cut in (1, 4, 8, 16, 24, 40, len(data) // 3, len(data) // 2):
            name = f"cut-{cut}-of-{fmt.lower()}{suffix}"
            (folder / name).write_bytes(data[:cut])
            expected[name] = "image"
        for seed in range(6):
            name = f"noise-{seed}-{fmt.lower()}{suffix}"
            (folder / name).write_bytes(np.random.default_rng(seed).bytes(64 + 50 * seed))
            expected[name] = "not an image file"
    modes = {"RGBA": "alpha", "LA": "alpha", "PA": "alpha", "I;16": "more than 8 bits",
             "I": "more than 8 bits", "F": "more than 8 bits", "CMYK": "colour mode",
             "YCbCr": "colour mode", "LAB": "colour mode", "HSV": "colour mode"}  # fmt: skip
    for mode, words in modes.items():
        for fmt, suffix in [("PNG", ".png"), ("TIFF", ".tif"), ("WEBP", ".webp")]:
            name = f"mode-{mode.replace(';', '')}-{fmt.lower()}{suffix}"
            try:
                Image.new(mode, (4, 4)).save(folder / name, format=fmt)
            except (OSError, ValueError, KeyError):
                continue  # this format cannot hold this mode
            if Image.open(folder / name).mode in ("RGB", "L", "P", "1"):
                (folder / name).unlink()  # the format converted it: a good image, not a case
                continue
            expected[name] = words
    return expected


def test_a_hundred_and_more_odd_files_each_fail_alone_in_one_line(tmp_path):
    expected = _odd_files(tmp_path / "in")
    _image(tmp_path / "in" / "zz-good.png")
    assert len(expected) >= 100
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out",
                                       str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == ExitStatus.BAD_INPUT and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
    assert len(errors) == len(expected), sorted(set(expected) - {e.split(":")[2] for e in errors})
    for name, words in expected.items():
        line = next(e for e in errors if f"/{name}:" in e)
        assert words in line, line
    written = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["keyless.json", "zz-good.png"]


def test_a_server_that_answers_html_is_one_error():
    import httpx

    from keyless.errors import KeylessError
    from keyless.serve import Client

    html = httpx.MockTransport(lambda request: httpx.Response(200, html="<h1>welcome</h1>"))
    client = Client("http://portal", http=httpx.Client(transport=html, base_url="http://portal"))
    with pytest.raises(KeylessError, match=r"answered /v1/model with text/html.*not a keyless"):
        client.info  # noqa: B018


def test_an_unwritable_output_is_one_line_and_leaves_nothing(tmp_path):
    _image(tmp_path / "in" / "ok.png")
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out"
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out", str(out)])
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert errors and all("cannot write" in line for line in errors), result.stderr
    written = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert written == []  # no temporary file left behind


def test_a_name_that_fits_is_written_though_its_temporary_name_is_cut(tmp_path):
    long = "n" * 251 + ".png"  # 255 bytes: the file system's limit
    _image(tmp_path / "in" / "ok.png")
    _image(tmp_path / "in" / long)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["keyless.json", long, "ok.png"]


def test_a_full_disk_is_one_line_per_output_and_for_keygen(tmp_path, monkeypatch):
    import keyless._atomic

    def no_space(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "b.png")
    monkeypatch.setattr(keyless._atomic.os, "replace", no_space)
    result = CliRunner().invoke(main, ["encrypt", str(tmp_path / "in"), "--out",
                                       str(tmp_path / "out")])  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyless: error:")]
    assert result.exit_code == 1 and len(errors) == 2, result.output  # both tried, both reported
    assert all("cannot write (No space left on device)" in line for line in errors)
    keygen = CliRunner().invoke(main, ["keygen", "--out", str(tmp_path / "m.key")])
    assert keygen.exit_code == 1 and keygen.stderr.count("\n") == 1, keygen.output
    assert "No space left on device" in keygen.stderr and "Traceback" not in keygen.output
    assert [p for p in tmp_path.rglob("*") if p.name.startswith(".")] == []  # no temporary file
