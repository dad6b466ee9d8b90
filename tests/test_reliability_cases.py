"""Bad and odd invocations of every command, as a hostile or careless user makes them, rebuilt
from a probe of the command line: each ends in one line naming the problem and its exit status
(or succeeds, where keyless wrongly refused), never a traceback; the good inputs of the same call
are processed and nothing is written for the bad ones.

Each case runs the command line in-process (click's runner) in a copy of one small world of
fixtures: ``in/`` (PNGs and an npz), ``photos/`` (class folders), ``up/`` (an encrypted upload),
``upm/`` (one under a master key ``mk.key``), ``run/`` and ``run2/`` (run folders made without
training). A case changes the copy (a tampered field, a link, a key file) before it runs.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.errors import ExitStatus
from keyless.keys import MasterKeySource
from keyless.runs import Checkpoint, Run, RunRecord, build_model, machine
from keyless.train import recipe
from keyless.train.recipes import make_optimizer

SIZE = 16  # pixels: every fixture image is SIZE x SIZE
ROOT = os.geteuid() == 0  # root reads and writes any folder whatever its mode


def _png(path: Path, seed: int, size: int = SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _npz(path: Path, n_train: int = 8, n_test: int = 4) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train + n_test, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.arange(n_train + n_test) % 2
    np.savez(path, x_train=images[:n_train], y_train=labels[:n_train],
             x_test=images[n_train:], y_test=labels[n_train:])  # fmt: skip


def _run(folder: Path, seed: int, classes: tuple[str, str] = ("0", "1")) -> None:
    """A run folder as training writes it (a fresh model: no training needed to read one)."""
    config = recipe("fast", model_kwargs={"widths": [8, 16, 32]}, seed=seed, precision="fp32")
    model = build_model(config, 2)
    checkpoint = Checkpoint(config, seed, list(classes), model.state_dict(), (SIZE, SIZE),
                            optimizer=make_optimizer(model, config).state_dict(), epoch=1,
                            train_seconds=1.5)  # fmt: skip
    Run(folder).save(checkpoint)
    record = RunRecord(config=config, machine=machine(), test={"plain": 0.5, "fresh_key": 0.5},
                       train_seconds=1.5, seed=seed, git_commit="0123456789ab",
                       precision="fp32")  # fmt: skip
    Run(folder).write_record(record)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("world")
    for name, seed in (("good", 1), ("good2", 2), ("companion", 3)):
        _png(base / "in" / f"{name}.png", seed)
    _npz(base / "in" / "small.npz")
    for i, name in enumerate(("train/a/1", "train/a/2", "train/b/3", "train/b/4", "test/a/5",
                              "test/b/6")):  # fmt: skip
        _png(base / "photos" / f"{name}.png", 10 + i)
    MasterKeySource.create(base / "mk.key")
    master = ["--keys", "master-key", "--key-file", str(base / "mk.key")]
    for out, extra in (("up", []), ("upm", master)):
        args = ["encrypt", str(base / "photos"), "--out", str(base / out), *extra]
        assert CliRunner().invoke(main, args).exit_code == 0
    _run(base / "run", 0)
    _run(base / "run2", 1)
    _run(base / "runup", 2, ("a", "b"))  # trained on the upload's classes
    return base


# -- how a case changes its copy of the world ------------------------------------------------


def set_json(path: str, field: str, value: Any) -> Callable[[Path], None]:
    """Set ``field`` (dotted for nested objects) of JSON file ``path`` to ``value``."""

    def change(home: Path) -> None:
        data = json.loads((home / path).read_text())
        *parents, last = field.split(".")
        target = data
        for name in parents:
            target = target[name]
        target[last] = value
        (home / path).write_text(json.dumps(data))

    return change


def set_checkpoint(field: str, value: Any) -> Callable[[Path], None]:
    """Set ``field`` (dotted: ``config.model``) of ``run/checkpoint.pt``'s state to ``value``."""

    def change(home: Path) -> None:
        path = home / "run" / "checkpoint.pt"
        state = torch.load(path, weights_only=True)
        *parents, last = field.split(".")
        target = state
        for name in parents:
            target = target[name]
        target[last] = value
        torch.save(state, path)

    return change


def interrupted(change: Callable[[Path], None]) -> Callable[[Path], None]:
    """``change`` to a run whose training was interrupted: no record beside its checkpoint."""
    return both(change, lambda home: (home / "run" / "record.json").unlink())


def pe_key(path: str, header: bytes, payload: int) -> Callable[[Path], None]:
    """A pixel key file with shape line ``header`` and ``payload`` code bytes."""

    def change(home: Path) -> None:
        (home / path).write_bytes(b"KEYLESS-PIXELKEY-1\n" + header + b"\n" + bytes(payload))

    return change


def both(*changes: Callable[[Path], None]) -> Callable[[Path], None]:
    def change(home: Path) -> None:
        for one in changes:
            one(home)

    return change


def symlink_loop(home: Path) -> None:
    (home / "in" / "link.png").symlink_to("link.png")


def untraversable(home: Path) -> None:
    """A sub-folder that can be listed but not entered (its files cannot be looked at)."""
    _png(home / "in" / "sub" / "a.png", 20)
    (home / "in" / "sub").chmod(0o600)


def untraversable_for_root(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    stat = Path.stat

    def refuse(path: Path, **kwargs: Any) -> os.stat_result:
        if (home / "in" / "sub") in Path(os.path.abspath(path)).parents:
            raise PermissionError(13, "Permission denied", str(path))
        return stat(path, **kwargs)

    monkeypatch.setattr(Path, "stat", refuse)


def read_only_folder(home: Path) -> None:
    (home / "ro").mkdir()
    (home / "ro").chmod(0o500)


def read_only_for_root(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    import tempfile

    mkstemp = tempfile.mkstemp

    def refuse(*args: Any, dir: str | None = None, **kwargs: Any) -> tuple[int, str]:
        if dir is not None and Path(os.path.abspath(dir)) == home / "ro":
            raise PermissionError(13, "Permission denied", str(Path(dir) / ".c.key.x.tmp"))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def tiny_images(home: Path) -> None:
    """PNGs smaller than a manifest, so that a file size limit lets them through, not it."""
    for name, value in (("good2", 1), ("companion", 2)):
        Image.new("RGB", (2, 2), (value, value, value)).save(home / "in" / f"{name}.png")


def long_names(home: Path) -> None:
    shutil.rmtree(home / "in")
    _png(home / "in" / ("M" * 251 + ".png"), 1)
    _png(home / "in" / ("N" * 250 + ".jpeg"), 2)


def leftover(home: Path) -> None:
    (home / "out").mkdir()
    (home / "out" / ".good.png.k1l2m3n4.tmp").write_bytes(b"half a png")
    (home / "out" / ".other.png.k1l2m3n4.tmp").write_bytes(b"not keyless's to remove")


def foreign_bomb(home: Path) -> None:
    """An upload folder with a PNG that claims 10^10 pixels (not made by keyless)."""
    assert CliRunner().invoke(main, ["encrypt", "in/good.png", "--out", "out", "--keys", "seed",
                                     "--seed", "1"]).exit_code == 0  # fmt: skip
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    (home / "out" / "bomb.png").write_bytes(png)


def other_classes(home: Path) -> None:
    labels = np.arange(12) % 2 + 99_000
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
    np.savez(home / "in" / "small.npz", x_train=images[:8], y_train=labels[:8],
             x_test=images[8:], y_test=labels[8:])  # fmt: skip


def zero_test_images(home: Path) -> None:
    _npz(home / "in" / "small.npz", n_test=0)


def npz_images(x_train: tuple[int, ...], x_test: tuple[int, ...]) -> Callable[[Path], None]:
    """``in/small.npz`` with images of these shapes."""

    def change(home: Path) -> None:
        np.savez(home / "in" / "small.npz", x_train=np.zeros(x_train, np.uint8),
                 y_train=np.arange(x_train[0]) % 2, x_test=np.zeros(x_test, np.uint8),
                 y_test=np.arange(x_test[0]) % 2)  # fmt: skip

    return change


# -- the cases -------------------------------------------------------------------------------


@dataclass
class Case:
    """``args`` run in a copy of the world changed by ``setup``: exit ``status`` with one error
    line holding ``says`` (none for OK); ``made`` must exist afterwards, ``absent`` must not.
    Running as root, which reads and writes whatever the modes say, ``as_root`` makes the
    refusals that ``setup``'s modes would; ``file_limit`` stands for a full disk (a write fails
    the same way, with a file size limit no test has to fill a disk for)."""

    args: str
    status: ExitStatus
    says: str = ""
    setup: Callable[[Path], None] | None = None
    made: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    as_root: Callable[[pytest.MonkeyPatch, Path], None] | None = None  # what root is refused
    file_limit: int | None = None  # bytes: run in a process that may write no larger file
    slow: bool = False


TRAIN = "train --data in/small.npz --device cpu --out run --resume"
TRAIN_UP = ("train --data up --upload --widths 8,16,32 --epochs 1 --device cpu --precision fp32 "
            "--seed 0 --out newrun")  # fmt: skip
EVAL_UP = "evaluate run --data up --upload --device cpu --no-tta"
TRAIN_NEW = ("train --data in/small.npz --widths 8,16,32 --epochs 1 --device cpu --precision fp32 "
             "--out newrun")  # fmt: skip
EVAL = "evaluate run --data in/small.npz --device cpu --no-tta"
DEC = "decrypt upm --out out --keys master-key --key-file mk.key"
ENC = "encrypt in --out out --keys seed --seed 1"
ENC_COMMON = "encrypt in/companion.png --out out --keys common --key-file c.key"
DEC_COMMON = "decrypt in/companion.png --out out --keys common --key-file c.key"
MANIFEST = "up/keyless.json"
NEW = ("newrun",)
BAD, KEY, USAGE, FAILED = (ExitStatus.BAD_INPUT, ExitStatus.BAD_KEY, ExitStatus.USAGE,
                           ExitStatus.FAILED)  # fmt: skip

CASES: dict[str, Case] = {
    "attack-empty-list": Case(
        "attack --data in/small.npz --attacks , --victims 4 --attacker-images 8 "
        "--budget-minutes 0.05 --out rep",
        USAGE,
        "--attacks",
        absent=("rep",),
    ),
    "attack-zero-test": Case(
        "attack --data in/small.npz --attacks fr,keyspace --victims 4 --attacker-images 8 "
        "--budget-minutes 0.05 --out rep",
        BAD,
        "in/small.npz",
        zero_test_images,
        absent=("rep",),
    ),
    "dec-manifest-cipher-empty": Case(
        DEC, BAD, "upm/keyless.json: ", set_json("upm/keyless.json", "cipher", {}), absent=("out",)
    ),
    "dec-manifest-cipher-string": Case(
        DEC,
        BAD,
        "upm/keyless.json: ",
        set_json("upm/keyless.json", "cipher", "pe"),
        absent=("out",),
    ),
    "demo-out-existing": Case("demo --out in/good.png", FAILED, "in/good.png"),
    "encman-out-foreign-bomb-png": Case(
        ENC, BAD, "out/bomb.png", foreign_bomb, made=("out/good2.png",)
    ),
    "encman-out-manifest-cipher-empty": Case(
        ENC,
        BAD,
        "out/keyless.json: ",
        both(
            lambda h: shutil.copytree(h / "upm", h / "out"),
            set_json("out/keyless.json", "cipher", {}),
        ),
        absent=("out/companion.png",),
    ),
    "encman-out-manifest-cipher-string": Case(
        ENC,
        BAD,
        "out/keyless.json: ",
        both(
            lambda h: shutil.copytree(h / "upm", h / "out"),
            set_json("out/keyless.json", "cipher", "pe"),
        ),
        absent=("out/companion.png",),
    ),
    "eval-ckpt-seed-str": Case(EVAL, BAD, "run/checkpoint.pt: ", set_checkpoint("seed", "3")),
    "eval-data-other-classes": Case(EVAL, BAD, "the data has classes", other_classes),
    "kg-file-size-limit": Case(
        "keygen --out m.key", FAILED, "m.key: File too large", file_limit=0, absent=("m.key",)
    ),
    "kg-disk-full": Case(
        "keygen --kind common --out full/c.key",
        FAILED,
        "full/c.key: File too large",
        file_limit=0,
        absent=("full/c.key",),
    ),
    "out-disk-full": Case(
        "encrypt in/good2.png in/companion.png --out out --keys seed --seed 1",
        FAILED,
        "out/keyless.json: cannot write",
        tiny_images,
        file_limit=200,
        made=("out/good2.png", "out/companion.png"),
        absent=("out/keyless.json",),
    ),
    "train-out-disk-full": Case(
        "train --data in/small.npz --widths 8,16,32 --epochs 1 --device cpu --precision fp32 "
        "--out newrun",
        FAILED,
        "newrun/checkpoint.pt: cannot write",
        file_limit=20_000,
        absent=("newrun/checkpoint.pt",),
        slow=True,
    ),
    "ck-create-readonly-dir": Case(
        "encrypt in/companion.png --out out --keys common --key-file ro/c.key",
        FAILED,
        "ro/c.key: cannot write",
        read_only_folder,
        absent=("out/companion.png",),
        as_root=read_only_for_root,
    ),
    "ck-dec-size-32": Case(
        DEC_COMMON,
        KEY,
        "c.key: key of shape",
        pe_key("c.key", b"1 32 32", 1024),
        absent=("out/companion.png",),
    ),
    "ck-enc-header-zero": Case(
        ENC_COMMON,
        KEY,
        "c.key: key of shape",
        pe_key("c.key", b"0 16 16", 0),
        absent=("out/companion.png",),
    ),
    "ck-enc-size-32": Case(
        ENC_COMMON,
        KEY,
        "c.key: key of shape",
        pe_key("c.key", b"1 32 32", 1024),
        absent=("out/companion.png",),
    ),
    "ck-enc-two-keys": Case(
        ENC_COMMON,
        KEY,
        "c.key: key of shape",
        pe_key("c.key", b"2 16 16", 512),
        absent=("out/companion.png",),
    ),
    "name-255-chars": Case(
        ENC,
        ExitStatus.OK,
        setup=long_names,
        made=("out/" + "M" * 251 + ".png", "out/" + "N" * 250 + ".png"),
    ),
    "size-empty": Case(
        "encrypt in/companion.png --out out --size ''", USAGE, "--size", absent=("out",)
    ),
    "path-symlink-loop": Case(
        "encrypt in/link.png in/companion.png --out out --keys seed --seed 1",
        BAD,
        "in/link.png",
        symlink_loop,
        made=("out/companion.png",),
    ),
    "path-trailing-slash-file": Case(
        "encrypt in/companion.png/ in/good.png --out out --keys seed --seed 1",
        BAD,
        "in/companion.png/",
        made=("out/good.png",),
        absent=("out/companion.png",),
    ),
    "path-untraversable-subfolder": Case(
        ENC,
        BAD,
        "in/sub/a.png: cannot read",
        untraversable,
        as_root=untraversable_for_root,
        made=("out/good.png", "out/companion.png"),
    ),
    "leftover-temporary-removed": Case(
        ENC,
        ExitStatus.OK,
        setup=leftover,
        made=("out/good.png", "out/.other.png.k1l2m3n4.tmp"),
        absent=("out/.good.png.k1l2m3n4.tmp",),
    ),
    "report-config-model-int": Case(
        "report run", BAD, "run/record.json: ", set_json("run/record.json", "config.model", 5)
    ),
    "report-mean-config-model-int": Case(
        "report --mean run run2",
        BAD,
        "run/record.json: ",
        set_json("run/record.json", "config.model", 5),
    ),
    "report-mean-git-commit-int": Case(
        "report --mean run run2",
        BAD,
        "run/record.json: ",
        set_json("run/record.json", "git_commit", 5),
    ),
    "report-mean-test-str-value": Case(
        "report --mean run run2",
        BAD,
        "run/record.json: ",
        set_json("run/record.json", "test.plain", "x"),
    ),
    "report-mean-train-seconds-str": Case(
        "report --mean run run2",
        BAD,
        "run/record.json: ",
        set_json("run/record.json", "train_seconds", "12"),
    ),
    "report-test-str-value": Case(
        "report run", BAD, "run/record.json: ", set_json("run/record.json", "test.plain", "0.5")
    ),
    "report-train-seconds-str": Case(
        "report run", BAD, "run/record.json: ", set_json("run/record.json", "train_seconds", "x")
    ),
    "serve-record-test-str": Case(
        "serve run --host 127.0.0.1 --port 0 --device cpu",
        BAD,
        "run/record.json: ",
        set_json("run/record.json", "test.plain", "x"),
    ),
    "train-epochs-huge": Case(
        "train --data in/small.npz --widths 8,16,32 --device cpu --out newrun --epochs 1e300",
        USAGE,
        "epochs",
        absent=NEW,
    ),
    "train-resume-ckpt-config-model-5": Case(
        TRAIN, BAD, "run/checkpoint.pt: ", interrupted(set_checkpoint("config.model", 5))
    ),
    "train-resume-ckpt-config-widths-other": Case(
        TRAIN,
        BAD,
        "run/checkpoint.pt: ",
        interrupted(set_checkpoint("config.model_kwargs", {"widths": [8, 16, 16]})),
    ),
    "train-resume-ckpt-epoch-str": Case(
        TRAIN, BAD, "run/checkpoint.pt: ", interrupted(set_checkpoint("epoch", "1"))
    ),
    "train-resume-ckpt-model-empty": Case(
        TRAIN, BAD, "run/checkpoint.pt: ", interrupted(set_checkpoint("model", {}))
    ),
    "train-resume-ckpt-optimizer-none": Case(
        TRAIN, BAD, "run/checkpoint.pt: ", interrupted(set_checkpoint("optimizer", None))
    ),
    "train-widths-four": Case(
        "train --data in/small.npz --epochs 1 --device cpu --out newrun --widths 8,16,32,64",
        USAGE,
        "widths",
        absent=NEW,
    ),
    "upl-eval-manifest-cipher-string": Case(
        EVAL_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "cipher", "pe")
    ),
    "upl-eval-manifest-classes-int": Case(
        EVAL_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "classes", 2)
    ),
    "upl-eval-manifest-size-int": Case(
        EVAL_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "image_size", 8)
    ),
    "upl-eval-manifest-keys-common": Case(  # a key mode the manifest cannot be proved wrong
        "evaluate runup --data up --upload --device cpu --no-tta",
        ExitStatus.OK,  # about (it is
        setup=set_json(MANIFEST, "keys", "common"),
    ),  # not signed), which evaluate does not use
    "mk-devzero": Case(
        "encrypt in/companion.png --out out --keys master-key --key-file /dev/zero",
        KEY,
        "/dev/zero: not a keyless master key",
        absent=("out",),
    ),
    "train-data-mixed-sizes": Case(
        TRAIN_NEW,
        BAD,
        "images of one data set must have one size",
        npz_images((8, SIZE, SIZE, 3), (4, 8, 8, 3)),
        absent=NEW,
    ),
    "train-data-zero-height": Case(
        TRAIN_NEW,
        BAD,
        "an image needs some",
        npz_images((8, 0, SIZE, 3), (4, 0, SIZE, 3)),
        absent=NEW,
    ),
    "upl-train-cipher-le": Case(
        TRAIN_UP + " --cipher le --block-size 4",
        USAGE,
        "the upload holds ciphertexts of cipher pe",
        absent=NEW,
    ),
    "upl-train-noshuffle": Case(
        TRAIN_UP + " --no-shuffle", USAGE, "the upload holds ciphertexts of cipher pe", absent=NEW
    ),
    "upl-train-manifest-cipher-bad-option": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "cipher.np_mode", "x"), absent=NEW
    ),
    "upl-train-manifest-cipher-string": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "cipher", "pe"), absent=NEW
    ),
    "upl-train-manifest-cipher-unknown": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "cipher.name", "nosuch"), absent=NEW
    ),
    "upl-train-manifest-classes-null": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "classes", None), absent=NEW
    ),
    "upl-train-manifest-hash-int": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "payload_sha256", 5), absent=NEW
    ),
    "upl-train-manifest-keys-bogus": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "keys", "bogus"), absent=NEW
    ),
    "upl-train-manifest-keys-int": Case(
        TRAIN_UP, BAD, f"{MANIFEST}: ", set_json(MANIFEST, "keys", 5), absent=NEW
    ),
}

# Cases whose fixtures are elsewhere in the suite (a live server, a fake one, a socket flood)
ELSEWHERE = {
    "cl-fake-badsize": "tests/serve/test_client.py (a malformed answer)",
    "cl-fake-drip": "tests/serve/test_client.py (a dripping server's deadline)",
    "cl-fake-fewresults": "tests/serve/test_client.py (a malformed answer)",
    "cl-fake-nolabel": "tests/serve/test_client.py (a malformed answer)",
    "cl-fake-nolimits": "tests/serve/test_client.py (a malformed answer)",
    "serve-host-bogus": "tests/serve/test_serve.py (a host that does not resolve)",
    "serve-port-in-use": "tests/serve/test_serve.py (a port in use)",
    "sockets-1100": "tests/serve/test_serve.py (one client holding 1100 sockets)",
    "npz-37kb-claims-1e9-images": "tests/data/test_datasets.py (a member whose size lies)",
}


def _error_lines(text: str) -> list[str]:
    """keyless's error lines, and click's for a usage error."""
    return [line for line in text.splitlines() if line.startswith(("keyless: error:", "Error:"))]


def _params() -> list[Any]:
    slow = [pytest.mark.slow]
    seconds = [n for n in CASES if CASES[n].slow or CASES[n].file_limit is not None]  # a child
    here = [pytest.param(name, marks=slow if name in seconds else ()) for name in CASES]
    elsewhere = [pytest.param(name, marks=pytest.mark.skip(reason=f"tested in {where}"))
                 for name, where in ELSEWHERE.items()]  # fmt: skip
    return sorted(here + elsewhere, key=lambda param: param.values[0])


@pytest.mark.parametrize("name", _params())
def test_case(name, world, tmp_path, monkeypatch):
    case = CASES[name]
    home = tmp_path / "home"
    shutil.copytree(world, home, symlinks=True)
    monkeypatch.chdir(home)
    import keyless.serve._app as app  # a case that reached serving has failed: never serve

    monkeypatch.setattr(app.uvicorn.Server, "run", _refuse_to_serve)
    if case.setup is not None:
        case.setup(home)
    if ROOT and case.as_root is not None:
        case.as_root(monkeypatch, home)
    try:
        code, stdout, stderr = _invoke(case)
    finally:
        for folder in ("in/sub", "ro"):
            if (home / folder).exists():
                (home / folder).chmod(0o700)
    errors = _error_lines(stderr)
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert code == case.status, (code, stdout, stderr)
    if case.status == ExitStatus.OK:
        assert errors == [], stderr
    else:
        assert len(errors) == 1 and case.says in errors[0], stderr
    for path in case.made:
        assert (home / path).exists(), path
    for path in case.absent:
        assert not (home / path).exists(), path


def _invoke(case: Case) -> tuple[int, str, str]:
    """Run the case's command line: in this process, or in a child with its file size limit."""
    args = shlex.split(case.args)
    if case.file_limit is None:
        result = CliRunner().invoke(main, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            return -1, result.stdout, f"Traceback: {result.exception!r}"
        return result.exit_code, result.stdout, result.stderr

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.file_limit, case.file_limit))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run([sys.executable, "-m", "keyless.cli", *args], capture_output=True,
                          text=True, env=env, preexec_fn=limit, timeout=300)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def _refuse_to_serve(self, *args, **kwargs):
    raise AssertionError("the service started")
