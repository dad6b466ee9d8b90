"""The demo tells a person how it went in a few sentences, and a finished run is only read back."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyless.cli import main
from keyless.demo import DemoRun, demo_config, demo_summary, run_demo
from keyless.train import TrainOutcome
from tests.synthetic import save_quadrant_npz


def _record(**test):
    return {
        "config": demo_config().to_dict(),
        "seed": 0,
        "data": "plain images (simulated owner)",
        "train_images": 50000,
        "train_seconds": 120.4,
        "precision": "bf16",
        "machine": {"cpu": "AMD EPYC", "cores": 2},
        "test": test
        or {
            "plain": 0.77171,
            "fresh_key": 0.77171,
            "plain_tta": 0.78389,
            "fresh_key_tta": 0.78389,
        },
    }


def test_summary_says_what_was_encrypted_trained_and_scored_in_plain_sentences():
    text = demo_summary(DemoRun(Path("demo/grid.png"), Path("demo/run"), _record(), False))
    lines = text.splitlines()
    assert 4 <= len(lines) <= 7 and "{" not in text and "0.77" not in text  # no JSON, no fractions
    assert lines[0].startswith("The owner encrypted 50,000 training images with pixel-based")
    assert "each under its own key" in lines[0] and "seed 0" in text
    assert "fastnet 32/64/128" in text and "3 epochs in 2 min 0 s (AMD EPYC, 2 cores, bf16)" in text
    scores = next(line for line in lines if "test images" in line)
    assert "77.2 % of the plain test images" in scores
    assert "77.2 % of those encrypted with fresh keys" in scores
    assert "test-time augmentation (TTA" in scores and "78.4 % and 78.4 %." in scores
    assert "demo/grid.png" in text and "demo/run" in text
    assert lines[-1] == "Try next: keyless report demo/run"
    again = demo_summary(DemoRun(Path("g.png"), Path("demo/run"), _record(), True))
    assert again.startswith("demo/run holds a finished run: nothing was trained or evaluated")
    no_tta = demo_summary(DemoRun(Path("g.png"), Path("r"), _record(plain=0.5), False))
    assert "correctly." in no_tta and "50.0 %" in no_tta and "TTA" not in no_tta


def test_demo_config_is_the_documented_train_command(monkeypatch, tmp_path):
    """`make demo` names the equivalent `keyless train` command: it must build the same config."""
    seen = {}

    def fake_train_run(config, data, out, **kwargs):
        seen["config"] = config
        return TrainOutcome(_record(), already_finished=False)

    monkeypatch.setattr("keyless.train.train_run", fake_train_run)
    args = ["train", "--data", str(tmp_path), "--model", "fastnet", "--widths", "32,64,128",
            "--epochs", "3", "--keys", "independent", "--stem", "invariant", "--seed", "0",
            "--out", str(tmp_path / "run")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert seen["config"] == demo_config()


@pytest.mark.slow
def test_a_finished_demo_run_is_read_back_not_trained_again(tmp_path, monkeypatch):
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=32)
    grid, run = tmp_path / "grid.png", tmp_path / "run"
    first = run_demo(grid, run, tmp_path / "d.npz")
    assert not first.finished_before and grid.exists()
    assert (
        first.record["train_images"] == 64
        and {"plain", "fresh_key_tta"} <= first.record["test"].keys()
    )
    recorded = (run / "record.json").read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was encrypted, trained or evaluated again")

    for name in ("prepare_upload", "evaluate_parts", "Trainer.run_epoch"):
        monkeypatch.setattr(f"keyless.train._engine.{name}", refuse)
    data = ["--data", str(tmp_path / "d.npz")]
    result = CliRunner().invoke(main, ["demo", *data, "--out", str(grid), "--train", str(run)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{run} holds a finished run: nothing was trained")
    assert f"Try next: keyless report {run}" in result.stdout
    again = CliRunner().invoke(main, ["train", *data, "--out", str(run), "--resume"])
    assert again.exit_code == 0, again.output
    assert "finished already" in again.stderr
    assert json.loads(again.stdout) == json.loads(recorded)["test"]
    assert (run / "record.json").read_bytes() == recorded


def test_demo_data_needs_train(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "--data needs --train" in result.stderr
