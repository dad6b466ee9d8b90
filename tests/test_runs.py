import json
import subprocess
import sys

import pytest
import torch

from keyless.cipher import PixelCipher, ScrambledPixelCipher
from keyless.errors import ConfigError, ExitStatus, InputError
from keyless.runs import (
    CHECKPOINT_VERSION,
    Checkpoint,
    Run,
    TrainConfig,
    build_model,
    load_run,
)
from keyless.train import recipe

CONFIG = recipe("fast", model_kwargs={"widths": [8, 16, 16]}, seed=3)


class Exploit:
    """Unpickling this runs code: what a crafted checkpoint.pt would do with weights_only=False."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_checkpoint_round_trip_is_typed_and_versioned(tmp_path):
    model = build_model(CONFIG, 10)
    saved = Checkpoint(CONFIG, seed=3, classes=list("abcdefghij"), model=model.state_dict(),
                       input_size=(24, 40), epoch=2,
                       history=[{"epoch": 1, "loss": 1.5}])  # fmt: skip
    Run(tmp_path).save(saved)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["format"] == "keyless-checkpoint" and state["version"] == CHECKPOINT_VERSION
    loaded = Run(tmp_path).load()
    assert loaded.config == CONFIG and (loaded.seed, loaded.epoch) == (3, 2)
    assert loaded.history == saved.history and loaded.classes == saved.classes
    assert loaded.input_size == (24, 40)
    model2, checkpoint = load_run(tmp_path)
    assert not model2.training and checkpoint.config == CONFIG
    for name, value in model.state_dict().items():
        torch.testing.assert_close(model2.state_dict()[name], value)


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / "checkpoint.pt", "wb") as f:
        torch.save({"config": Exploit()}, f)
    with pytest.raises(InputError, match="not a keyless checkpoint"):
        Run(tmp_path / "run").load()
    assert not (tmp_path / "PWNED").exists()


def test_missing_and_newer_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match=r"no checkpoint\.pt"):
        Run(tmp_path).load()
    state = Checkpoint(CONFIG, 0, ["a"], {}, (32, 32)).to_state() | {
        "version": CHECKPOINT_VERSION + 1
    }
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(InputError, match="newer than this keyless reads"):
        Run(tmp_path).load()


def test_the_service_does_not_import_the_training_engine():
    code = (
        "import sys, keyless.serve; print(any(m.startswith('keyless.train') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_random_bytes_are_never_a_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    for seed in range(100):  # junk makes the weights-only unpickler raise many kinds of errors
        junk = torch.randint(0, 256, (5000,), dtype=torch.uint8,
                             generator=torch.Generator().manual_seed(seed))  # fmt: skip
        (tmp_path / "run" / "checkpoint.pt").write_bytes(junk.numpy().tobytes())
        with pytest.raises(InputError, match="not a keyless checkpoint"):
            Run(tmp_path / "run").load()


@pytest.mark.parametrize("damage", ["empty", "random", "truncated", "text", "zip of junk"])
def test_a_damaged_checkpoint_is_one_line_for_evaluate_serve_and_resume(tmp_path, damage):
    from click.testing import CliRunner

    from keyless.cli import main

    model = build_model(CONFIG, 10)
    good = Checkpoint(CONFIG, 3, list("abcdefghij"), model.state_dict(), (32, 32))
    Run(tmp_path / "good").save(good)
    whole = (tmp_path / "good" / "checkpoint.pt").read_bytes()
    junk = torch.randint(
        0, 256, (5000,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    data = {"empty": b"", "random": junk.numpy().tobytes(), "truncated": whole[: len(whole) // 2],
            "text": b"not a checkpoint\n", "zip of junk": whole[:30] + bytes(200)}  # fmt: skip
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(data[damage])
    npz = tmp_path / "d.npz"
    import numpy as np

    np.savez(npz, x_train=np.zeros((2, 32, 32, 3), np.uint8), y_train=np.array([0, 1]),
             x_test=np.zeros((1, 32, 32, 3), np.uint8), y_test=np.array([0]))  # fmt: skip
    run = str(tmp_path / "run")
    for args in (["evaluate", run, "--data", str(npz)], ["serve", run, "--port", "1"],
                 ["train", "--data", str(npz), "--out", run, "--resume"]):  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code == ExitStatus.BAD_INPUT, (args, result.output, result.exception)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "not a keyless checkpoint" in lines[0], result.stderr


def _older_checkpoint(folder, record=None):
    """A checkpoint as keyless wrote it before it saved the input size (and its record)."""
    state = Checkpoint(CONFIG, 3, list("abcdefghij"), build_model(CONFIG, 10).state_dict(),
                       (8, 8)).to_state()  # fmt: skip
    del state["input_size"]
    folder.mkdir()
    torch.save(state, folder / "checkpoint.pt")
    if record is not None:
        (folder / "record.json").write_text(json.dumps(record))


def test_an_older_checkpoint_takes_its_uploads_recorded_size_else_32x32(tmp_path):
    _older_checkpoint(tmp_path / "bare")
    assert Run(tmp_path / "bare").load().input_size == (32, 32)
    record = {"config": CONFIG.to_dict(), "machine": {"gpu": "G"}, "test": {}, "train_seconds": 1,
              "upload": {"image_size": [96, 64], "keys": "independent"}}  # fmt: skip
    _older_checkpoint(tmp_path / "upload", record)
    assert Run(tmp_path / "upload").load().input_size == (96, 64)
    _older_checkpoint(tmp_path / "simulated", {**record, "upload": None})
    assert Run(tmp_path / "simulated").load().input_size == (32, 32)


def test_an_older_record_or_checkpoint_storing_no_cipher_settings_is_pe():
    assert TrainConfig.from_dict({**CONFIG.to_dict(), "cipher": {}}).cipher == PixelCipher()
    with pytest.raises(ValueError, match=r"cipher\n  Value error, unknown cipher 'pe2'"):
        TrainConfig.from_dict({**CONFIG.to_dict(), "cipher": {"name": "pe2"}})


def test_resuming_refuses_given_values_that_contradict_the_run_and_names_each():
    saved = recipe("invariant96", cipher=ScrambledPixelCipher(block_size=8, noise=4.0), epochs=5)
    same = saved.replace(lr=saved.lr)
    same.check_resume(saved)  # every field the same
    other = recipe("fast", model_kwargs={"widths": [8, 8, 8], "residual": True}, epochs=5,
                   cipher=PixelCipher(noise=4.0))  # fmt: skip
    other.check_resume(saved, {"epochs", "noise", "residual", "out", "device"})  # as the run
    with pytest.raises(ConfigError) as refused:
        other.check_resume(saved, {"recipe", "widths", "cipher", "block_size", "epochs"})
    assert str(refused.value) == (
        "--resume continues the run as configured; --block-size (the run has block_size=8), "
        f"--cipher (the run has cipher={saved.cipher.settings()!r}), --recipe (the run has "
        "recipe='invariant96'), --widths (the run has widths=[128, 512, 512]): drop the option "
        "or train into a new --out"
    )
    every = r"; --stem .*, --cipher .*, --recipe .*, --lr .*, --model-kwargs .*: drop"
    with pytest.raises(ConfigError, match=every):
        other.check_resume(saved)  # None: every field, in their order
