"""Fuzzing every file format keyless reads back: a valid upload manifest, run record and checkpoint
with one field replaced by a random JSON value, deleted, or joined by an unknown one. Reading it,
and using what was read as keyless does (tables of records, the model of a checkpoint, the
upload a manifest describes), either works or is one :class:`InputError` line naming the file
(exit status BAD_INPUT); nothing else is raised and nothing is written.

The library's readers run directly (the command line only prints their one line, which a few
command-line examples check at the end).
"""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from keyless.cli import main
from keyless.errors import ExitStatus, InputError, KeylessError
from keyless.runs import Checkpoint, Run, RunRecord, build_model, load_run, machine, run_table
from keyless.train import recipe
from keyless.upload import MANIFEST, Manifest, check_resume, load_received

EXAMPLES = 200  # per file kind
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
CONFIG = recipe("fast", model_kwargs={"widths": [8, 8, 8]}, seed=0, precision="fp32")

leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))  # fmt: skip
keys = st.text(max_size=6)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON-like value (dict keys and list items, recursively)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += paths(item, (*prefix, index))
    return found


def leaf_values(value: Any) -> list[Any]:
    """Values found in the valid file: a wrong field often holds another field's right value."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in [item, *leaf_values(item)]]
    if isinstance(value, list):
        return [v for item in value for v in [item, *leaf_values(item)]]
    return []


@st.composite
def tampered(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """``valid`` with one place replaced (a random JSON value or one of its own), removed, or
    given an unknown key."""
    data = copy.deepcopy(valid)
    where = draw(st.sampled_from(paths(data)))
    *parents, last = where
    target = data
    for key in parents:
        target = target[key]
    action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
    if action == "replace":
        own = [v for v in leaf_values(valid) if not isinstance(v, torch.Tensor)]
        target[last] = draw(json_values | st.sampled_from(own))
    elif action == "remove" and isinstance(target, dict):
        del target[last]
    elif isinstance(target[last], dict):
        target[last][draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    else:
        target[last] = draw(json_values)
    return data


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def one_line_naming(error: InputError, path: Path) -> None:
    event("refused")
    message = str(error)
    assert error.exit_code == ExitStatus.BAD_INPUT
    assert "\n" not in message and message.startswith(str(path)), message


# -- the upload manifest ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def upload(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "photos"
    rng = np.random.default_rng(0)
    for name in ("train/a/1", "train/b/2", "test/a/3", "test/b/4"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    up = folder.parent / "up"
    result = CliRunner().invoke(main, ["encrypt", str(folder), "--out", str(up), "--keys",
                                       "seed", "--seed", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return up


@FUZZ
@given(data=st.data())
def test_a_tampered_manifest_is_read_or_one_line(upload, data):
    valid = json.loads((upload / MANIFEST).read_text())
    tampered_manifest = data.draw(tampered(valid))
    text = json.dumps(tampered_manifest)
    (upload / MANIFEST).write_text(text)
    before = files_under(upload)
    try:
        manifest, splits = load_received(upload)  # read, hash checked, the images described
        assert isinstance(manifest, Manifest) and splits["train"].classes == tuple(manifest.classes)
        check_resume(upload, manifest)  # compared with itself, as a resume does
        event("read")
    except InputError as exc:
        one_line_naming(exc, upload)
    finally:
        after = files_under(upload)
        (upload / MANIFEST).write_text(json.dumps(valid))
    assert after == before  # nothing written


# -- the run record ---------------------------------------------------------------------------


def _record() -> dict[str, Any]:
    upload = {"image_size": [16, 16], "keys": "independent", "classes": ["a", "b"]}
    record = RunRecord(config=CONFIG, machine=machine(), test={"plain": 0.5, "fresh_key": 0.25},
                       train_seconds=1.5, seed=0, git_commit="0123456789ab", precision="fp32",
                       history=[{"epoch": 1, "loss": 1.0}], command="keyless train",
                       data_source="plain images with sha256 00", upload=upload)  # fmt: skip
    return record.to_dict()


@pytest.fixture(scope="module")
def older_checkpoint(checkpoint_state) -> bytes:
    """A checkpoint of older keyless: no input size (its record's upload tells it)."""
    buffer = io.BytesIO()
    torch.save({k: v for k, v in checkpoint_state.items() if k != "input_size"}, buffer)
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
def test_a_tampered_record_is_read_or_one_line(tmp_path_factory, older_checkpoint, data):
    valid = _record()
    folder = tmp_path_factory.mktemp("record")
    (folder / "run").mkdir()
    path = folder / "run" / "record.json"
    path.write_text(json.dumps(data.draw(tampered(valid))))
    (folder / "run" / "checkpoint.pt").write_bytes(older_checkpoint)
    before = files_under(folder)
    try:
        RunRecord.read(path)
        assert len(Run(folder / "run").load().input_size) == 2  # the record's upload's size
        for mean in (False, True):  # what report makes of it, alone and with a valid one
            (folder / "run2").mkdir(exist_ok=True)
            (folder / "run2" / "record.json").write_text(json.dumps(valid))
            assert run_table([path], mean=mean) and run_table([path, folder / "run2"], mean=mean)
            (folder / "run2" / "record.json").unlink()
            (folder / "run2").rmdir()
        event("read")
    except InputError as exc:
        one_line_naming(exc, path)
    assert files_under(folder) == before


# -- the checkpoint ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_state() -> dict[str, Any]:
    model = build_model(CONFIG, 2)
    return Checkpoint(CONFIG, 0, ["a", "b"], model.state_dict(), (16, 16), epoch=1,
                      train_seconds=2.0, history=[{"epoch": 1, "loss": 1.0}],
                      data="plain images with sha256 00",
                      partial={"step": 1, "seen": 2, "loss_sum": 0.5, "correct": 1,
                               "seconds": 0.1, "rng": None}).to_state()  # fmt: skip


@FUZZ
@given(data=st.data())
def test_a_tampered_checkpoint_is_read_or_one_line(tmp_path_factory, checkpoint_state, data):
    folder = tmp_path_factory.mktemp("checkpoint")
    torch.save(data.draw(tampered(checkpoint_state)), folder / "checkpoint.pt")
    before = files_under(folder)
    try:
        model, checkpoint = load_run(folder)  # read, the model built and its weights loaded
        assert checkpoint.epoch >= 0 and not model.training
        event("read")
    except InputError as exc:
        one_line_naming(exc, folder / "checkpoint.pt")
    except KeylessError as exc:  # a config that no longer goes together: one line all the same
        event(type(exc).__name__)
        assert "\n" not in str(exc), exc
    assert files_under(folder) == before


# -- a few through the command line -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [("record", "test", {"plain": [1]}), ("record", "config", {"model": {}}),
     ("manifest", "counts", {"train": -1}), ("manifest", "cipher", {"name": "pe", "noise": "x"}),
     ("checkpoint", "history", 5), ("checkpoint", "partial", {"step": "1"})],
)  # fmt: skip
def test_the_command_line_prints_the_readers_one_line(tmp_path, upload, checkpoint_state, kind,
                                                      field, value):  # fmt: skip
    run = tmp_path / "run"
    Run(run).save(Checkpoint.from_state(checkpoint_state))
    Run(run).write_record(RunRecord.model_validate(_record()))
    up = tmp_path / "up"
    shutil.copytree(upload, up)
    if kind == "record":
        raw = json.loads((run / "record.json").read_text()) | {field: value}
        (run / "record.json").write_text(json.dumps(raw))
        args, named = ["report", str(run)], run / "record.json"
    elif kind == "manifest":
        raw = json.loads((up / MANIFEST).read_text()) | {field: value}
        (up / MANIFEST).write_text(json.dumps(raw))
        args = ["evaluate", str(run), "--data", str(up), "--upload", "--no-tta"]
        named = up / MANIFEST
    else:
        torch.save(checkpoint_state | {field: value}, run / "checkpoint.pt")
        args, named = ["evaluate", str(run), "--data", str(up), "--no-tta"], run / "checkpoint.pt"
    before = files_under(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == ExitStatus.BAD_INPUT, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"keyless: error: {named}: not a keyless")
    assert f"{field}" in lines[0].split("not a keyless", 1)[1], lines[0]
    assert files_under(tmp_path) == before
