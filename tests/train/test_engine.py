import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from keyless.cipher import LearnableCipher, PixelCipher
from keyless.cli import main
from keyless.errors import ConfigError, ExitStatus, InputError
from keyless.evaluate import accuracy, predict
from keyless.models import MODELS
from keyless.runs import Checkpoint, Run, TrainConfig, build_model, load_run
from keyless.train import recipe, recipes, train, train_run
from keyless.upload import hold_out, prepare_upload
from tests.synthetic import quadrant_splits, save_quadrant_npz

TINY = {"model_kwargs": {"widths": [16, 32, 32]}, "batch_size": 64, "seed": 0, "precision": "fp32"}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "muon"])
def test_tiny_training_on_independent_keys_beats_chance(tmp_path, optimizer, exact_device):
    config = recipe(
        "fast", keys="independent", stem="invariant", epochs=10, optimizer=optimizer, **TINY
    )
    splits = quadrant_splits(n_train=320, n_test=400)
    record = train(config, splits, tmp_path / "run", progress=False, device=exact_device)
    clearly_above_chance = 0.25 + 5 * (0.25 * 0.75 / 400) ** 0.5  # chance + 5 standard errors
    assert record["test"]["fresh_key"] > clearly_above_chance, record["test"]
    assert record["test"]["plain"] == record["test"]["fresh_key"]  # identical inputs to the net
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    saved = json.loads((tmp_path / "run" / "record.json").read_text())
    assert saved["config"]["keys"] == "independent" and len(saved["history"]) == 10
    assert {"machine", "git_commit", "seed", "train_seconds"} <= saved.keys()
    assert f"regenerated from seed {saved['seed']}" in saved["keys_note"]
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700  # the seed opens every key
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()} == {0o600}


@pytest.mark.slow
def test_common_key_run_reports_the_common_key_test_set(tmp_path, exact_device):
    # not re-keyed: the model learns the one key, so another key would score differently
    config = recipe("fast", keys="common", epochs=2, val_size=64, **TINY)
    splits = quadrant_splits()
    record = train(config, splits, tmp_path / "run", progress=False, device=exact_device)
    assert record["train_images"] == 320 - 64
    model, checkpoint = load_run(tmp_path / "run", exact_device)
    cipher, test = config.cipher, splits["test"]
    # the owner's upload again (seeded): its one key opens every training image, and the
    # validation images are the held-out training images under that key
    upload = prepare_upload(splits["train"], config, cipher, checkpoint.seed)
    keep, held = hold_out(320, 64, checkpoint.seed)
    assert torch.equal(cipher.decrypt(upload.train.images, upload.common_key),
                       splits["train"].images[keep])  # fmt: skip
    assert torch.equal(cipher.decrypt(upload.val.images, upload.common_key),
                       splits["train"].images[held])  # fmt: skip
    val = predict(model, upload.val.images, device=exact_device, precision="fp32")
    assert record["history"][-1]["val_acc"] == accuracy(val, upload.val.labels)
    # the common-key test set: the test images under the training key, with and without TTA
    common = cipher.encrypt(test.images, upload.common_key)
    for name, tta in [("common_key", False), ("common_key_tta", True)]:
        logits = predict(model, common, tta=tta, device=exact_device, precision="fp32")
        assert record["test"][name] == accuracy(logits, test.labels), name


@pytest.mark.slow
def test_client_augmentation_with_le_and_its_block_adaptation_network(tmp_path):
    config = recipe("fast", keys="common", stem="nibbles", adapt="block", augment="client",
                    cipher=LearnableCipher(block_size=4), epochs=2, **TINY)  # fmt: skip
    record = train(config, quadrant_splits(), tmp_path / "run", progress=False)
    assert {"plain", "fresh_key", "common_key"} <= record["test"].keys()
    assert record["config"]["augment"] == "client"
    with pytest.raises(ConfigError, match="does not go with client augmentation"):
        config.replace(rekey=True)


def _cli_train(data, out, *extra):
    """The CLI's train command on the CPU (the torchrun test's processes are CPU ones, and
    evaluation is compared with the record)."""
    return [sys.executable, "-m", "keyless.cli", "train", "--data", str(data), "--model", "fastnet",
            "--widths", "16,32,32", "--batch-size", "32", "--seed", "0", "--precision", "fp32",
            "--device", "cpu", "--out", str(out), *extra]  # fmt: skip


@pytest.mark.slow
def test_kill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=320, n_test=64)
    out = tmp_path / "run"
    process = subprocess.Popen(_cli_train(tmp_path / "d.npz", out, "--epochs", "8"))
    deadline = time.time() + 600  # generous: a loaded machine starves the subprocess
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = Run(out).load()
    assert 1 <= first.epoch < 8 and not (out / "record.json").exists()
    resumed = subprocess.run(_cli_train(tmp_path / "d.npz", out, "--epochs", "8", "--resume"))
    assert resumed.returncode == 0
    record = json.loads((out / "record.json").read_text())
    assert len(record["history"]) == 8
    assert record["history"][: first.epoch] == first.history  # kept, not retrained


def _cut_at_step_7(config, out, monkeypatch, device=None):
    """Train ``config`` into ``out`` until a KeyboardInterrupt at step 7 (2 steps into epoch 2
    of 5 steps each), checkpointing at every step."""
    schedule = recipes.lr_factor

    def interrupt_at_step_7(config, step, total, steps_per_epoch):
        if step == 7:
            raise KeyboardInterrupt
        return schedule(config, step, total, steps_per_epoch)

    monkeypatch.setattr(recipes, "lr_factor", interrupt_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(config, quadrant_splits(), out, progress=False, checkpoint_minutes=0, device=device)
    monkeypatch.undo()
    saved = Run(out).load()
    assert saved.epoch == 1 and saved.partial["step"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "muon"])
def test_resume_mid_epoch_gives_the_uninterrupted_run(
    tmp_path, monkeypatch, optimizer, exact_device
):
    config = recipe(  # 5 steps/epoch
        "fast", keys="independent", rekey=True, epochs=2, optimizer=optimizer, **TINY
    )
    whole = train(
        config, quadrant_splits(), tmp_path / "whole", progress=False, device=exact_device
    )
    _cut_at_step_7(config, tmp_path / "cut", monkeypatch, exact_device)
    resumed = train(config, quadrant_splits(), tmp_path / "cut", resume=True, progress=False,
                    device=exact_device)  # fmt: skip

    def without_times(history):
        return [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]

    assert without_times(resumed["history"]) == without_times(whole["history"])
    assert resumed["test"] == whole["test"]


@pytest.mark.slow
@pytest.mark.cuda
def test_client_augmentation_and_a_lookahead_resume_on_cuda(tmp_path, monkeypatch):
    """The owner's keys and the lookahead average must follow the model onto the GPU."""
    config = recipe("fast", keys="common", augment="client", epochs=2, **TINY)
    _cut_at_step_7(config, tmp_path / "cut", monkeypatch, device="cuda")
    resumed = train(config, quadrant_splits(), tmp_path / "cut", resume=True, progress=False,
                    device="cuda")  # fmt: skip
    assert len(resumed["history"]) == 2 and resumed["device"].startswith("cuda")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"epochs": 0}, "epochs must be above 0 and at most 10000, got 0"),
        ({"epochs": float("inf")}, "epochs must be above 0 and at most 10000, got inf"),
        ({"epochs": 1e300}, "epochs must be above 0 and at most 10000, got 1e+300"),
        ({"batch_size": -5}, "batch_size must be 1 to 1048576, got -5"),
        ({"batch_size": 2**40}, f"batch_size must be 1 to 1048576, got {2**40}"),
        ({"max_train_images": 0}, "max_train_images must be at least 1, got 0"),
        ({"val_size": -1}, "val_size must be at least 0, got -1"),
        ({"translate": -2}, "translate must be at least 0, got -2"),
        ({"cutout": -1}, "cutout must be at least 0, got -1"),
        ({"seed": -1}, "seed must be from 0 to 2**32 - 1, got -1"),
        ({"seed": 2**32}, f"seed must be from 0 to 2**32 - 1, got {2**32}"),
    ],
)
def test_configs_out_of_range_are_refused(change, words):
    with pytest.raises(ConfigError, match=f"^{re.escape(words)}$"):
        recipe("fast", **change)


def test_runs_that_cannot_be_built_are_one_line_before_training(tmp_path, monkeypatch):
    splits = quadrant_splits(n_train=40, n_test=8)
    with pytest.raises(ConfigError, match="val_size 40 leaves none of the 40 training images"):
        train(recipe("fast", val_size=40, **TINY), splits, tmp_path / "a", progress=False)
    odd = {**TINY, "model_kwargs": {**TINY["model_kwargs"], "whiten_width": 3}}
    with pytest.raises(ConfigError, match="whiten_width must be even"):
        train(recipe("fast", **odd), splits, tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match=r"^--device: unknown device 'foo' \(cpu or cuda\)$"):
        train(recipe("fast", **TINY), splits, tmp_path / "c", device="foo", progress=False)
    with pytest.raises(ConfigError, match=r"^--device: unknown device 'mps' \(cpu or cuda\)$"):
        train(recipe("fast", **TINY), splits, tmp_path / "c", device="mps", progress=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^--device cuda:1: this machine has 0 CUDA GPUs"):
        train(recipe("fast", **TINY), splits, tmp_path / "d", device="cuda:1", progress=False)
    balanced = recipe("fast", rekey=True, cipher=PixelCipher(np_mode="balanced"), **TINY)
    with pytest.raises(ConfigError, match="keeps coin-flip keys distributed as fresh ones but not"):
        train(balanced, splits, tmp_path / "e", progress=False)
    with pytest.raises(ConfigError, match=r"^a cutout of 17 pixels does not fit 16x16 images$"):
        train(recipe("fast", cutout=17, **TINY), splits, tmp_path / "f", progress=False)
    odd = quadrant_splits(40, 8, size=18)
    with pytest.raises(ConfigError, match=r"^--adapt block works on 4x4 blocks: 18x18 images do"):
        train(recipe("fast", keys="common", adapt="block", **TINY), odd, tmp_path / "g",
              progress=False)  # fmt: skip
    assert not any((tmp_path / name).exists() for name in "abcdefg")


def test_older_runs_load_with_configs_keyless_now_refuses_for_new_runs(tmp_path):
    """A balanced re-keyed run, and max_train_images 0 (all images), were accepted before."""
    old = recipe("fast", rekey=True, cipher=PixelCipher(np_mode="balanced"), **TINY)
    values = {**old.to_dict(), "max_train_images": 0}
    assert TrainConfig.from_dict(values).max_train_images is None
    assert TrainConfig.from_dict(values).rekey


TORCHRUN_SCRIPT = """
import hashlib, json, os, sys
from keyless.cli import main
from keyless.train import recipes

step, steps = recipes.Learner.step, []

def logged(self, x, y, i):
    done = step(self, x, y, i)
    weights = b"".join(p.detach().numpy().tobytes() for p in self.model.parameters())
    steps.append([i, len(y), hashlib.sha256(x.numpy().tobytes()).hexdigest(),
                  hashlib.sha256(weights).hexdigest()])
    return done

recipes.Learner.step = logged
main(sys.argv[2:], standalone_mode=False)
with open(f"{sys.argv[1]}/steps{os.environ['RANK']}.json", "w") as f:
    json.dump(steps, f)
"""


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_model_on_halves_of_each_batch(tmp_path):
    """Data parallel: at every step each process takes its own half of the batch, and the
    averaged gradients leave both with the same new weights."""
    save_quadrant_npz(tmp_path / "d.npz", n_train=128, n_test=64)
    (tmp_path / "script.py").write_text(TORCHRUN_SCRIPT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--standalone", str(tmp_path / "script.py"), str(tmp_path)]  # fmt: skip
    command = [*torchrun, *_cli_train(tmp_path / "d.npz", tmp_path / "run", "--epochs", "1")[3:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["world_size"] == 2 and len(record["history"]) == 1
    log, report = result.stdout.split("{", 1)  # one epoch line and one report, from rank 0
    assert log.count("epoch=1 ") == 1 and json.loads("{" + report) == record["test"]
    ranks = [json.loads((tmp_path / f"steps{r}.json").read_text()) for r in (0, 1)]
    assert [s[0] for s in ranks[0]] == [s[0] for s in ranks[1]] == [0, 1, 2, 3]  # 128 / 32
    for (_, n0, batch0, weights0), (_, n1, batch1, weights1) in zip(*ranks, strict=True):
        assert n0 == n1 == 16 and batch0 != batch1 and weights0 == weights1
    assert len({s[3] for s in ranks[0]}) == 4  # every step moved the weights


@pytest.mark.slow
@pytest.mark.parametrize("cipher", ["pe", "ele"])
def test_cli_evaluate_and_report(tmp_path, cipher):
    save_quadrant_npz(tmp_path / "d.npz")
    runner = CliRunner()
    args = _cli_train(tmp_path / "d.npz", tmp_path / "run", "--epochs", "2", "--keys", "common")[3:]
    args += ["--cipher", cipher, "--block-size", "2"] if cipher == "ele" else []
    assert runner.invoke(main, args).exit_code == 0
    evaluate = ["evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "d.npz")]
    result = runner.invoke(main, [*evaluate, "--device", "cpu"])  # where the run trained
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "run" / "record.json").read_text())["test"]
    assert json.loads(result.stdout) == pytest.approx(recorded)
    table = runner.invoke(main, ["report", str(tmp_path / "run"), "--out", str(tmp_path / "t.md")])
    assert table.exit_code == 0 and "| run | model | keys | cipher |" in table.stdout
    assert ("| ele block_size=2 |" if cipher == "ele" else "| common | pe |") in table.stdout
    assert "`keyless " in (tmp_path / "t.md").read_text()  # each row names its command
    missing = runner.invoke(main, ["evaluate", str(tmp_path), "--data", str(tmp_path / "d.npz")])
    assert missing.exit_code == ExitStatus.BAD_INPUT and "no checkpoint.pt" in missing.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("model", "convs"), [("resnet18", 17 + 3), ("densenet", 10 - 1)])
def test_paper_recipe_trains_its_model_with_its_sgd(tmp_path, model, convs):
    config = recipe("paper", model=model, epochs=1, batch_size=32, seed=0, precision="fp32")
    assert (config.lr, config.momentum, config.weight_decay, config.milestones) == (
        0.1,
        0.9,
        5e-4,
        (150, 225),
    )
    config = config.replace(
        max_train_images=64, model_kwargs={"depth": 10} if model == "densenet" else None
    )
    record = train(config, quadrant_splits(n_train=64, n_test=16), tmp_path / "run", progress=False)
    assert record["config"]["recipe"] == "paper" and len(record["history"]) == 1
    net, checkpoint = load_run(tmp_path / "run")
    # resnet18: 17 convolutions and 3 projections; densenet-BC depth 10: 9 convolutions, 1 linear
    assert type(net.backbone) is MODELS.get(model)
    assert sum(isinstance(m, nn.Conv2d) for m in net.backbone.modules()) == convs
    groups = checkpoint.optimizer["param_groups"]
    assert {(g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) for g in groups} == {
        (0.1, 0.9, False, 5e-4)  # the step schedule is still at its first value
    }
    trained = [p for p in net.parameters() if p.requires_grad]
    momentum = checkpoint.optimizer["state"].values()
    assert len(momentum) == len(trained) and all("momentum_buffer" in s for s in momentum)


@pytest.mark.slow  # seconds: a child process or a real wait
def test_compile_option_compiles_the_training_network_only():
    from keyless.cipher import create_cipher
    from keyless.train._engine import Processes, _feed, _learner
    from keyless.upload import split_data

    config = recipe("fast", keys="independent", epochs=1, **TINY)
    train_set, _ = split_data(quadrant_splits(n_train=64, n_test=8), config)
    upload = prepare_upload(train_set, config, create_cipher(), seed=0)
    procs = Processes.start("cpu")
    feed = _feed(config, upload, 0, procs, readers=0)
    learner = _learner(config, upload, feed, 0, procs, "fp32", compile_model=True)
    assert learner.net is not learner.model and learner.net._orig_mod is learner.model
    plain = _learner(config, upload, feed, 0, procs, "fp32")
    assert plain.net is plain.model


@pytest.mark.slow
def test_cli_invariant_recipe_trains_on_the_fold_unless_told_otherwise(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    runner = CliRunner()
    for name, extra in [("recipe", []), ("spline", ["--stem", "spline", "--whiten-width", "48"])]:
        args = _cli_train(tmp_path / "d.npz", tmp_path / name, "--epochs", "1", "--recipe",
                          "invariant", *extra)[3:]  # fmt: skip
        assert runner.invoke(main, args).exit_code == 0
    config = json.loads((tmp_path / "recipe" / "record.json").read_text())["config"]
    assert (config["recipe"], config["keys"], config["stem"]) == (
        "invariant",
        "independent",
        "invariant",
    )
    config = json.loads((tmp_path / "spline" / "record.json").read_text())["config"]
    assert config["stem"] == "spline" and config["model_kwargs"]["whiten_width"] == 48


@pytest.mark.slow
def test_cli_widths_keep_the_recipes_residual_groups(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    args = _cli_train(tmp_path / "d.npz", tmp_path / "run", "--epochs", "1", "--recipe",
                      "invariant96")[3:]  # --widths 16,32,32  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = Run(tmp_path / "run").load().config
    assert config.model_kwargs == {"widths": [16, 32, 32], "residual": True}
    convs = [m for m in build_model(config, 4).backbone.body.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 16, 32, 32, 32, 32, 32, 32]
    resumed = [*args[:-2], "--resume"]  # the recipe left out: --widths alone is compared
    assert "--recipe" in args[-2:] and "--widths" in resumed
    assert CliRunner().invoke(main, resumed).exit_code == 0
    other = [*resumed[:-1], "--widths", "16,32,16", "--resume"]
    refused = CliRunner().invoke(main, other)
    assert "--widths (the run has widths=[16, 32, 32])" in refused.stderr, refused.output


@pytest.mark.slow
def test_resume_refuses_options_that_contradict_the_run_and_accepts_the_same_ones(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    runner = CliRunner()
    first = _cli_train(tmp_path / "d.npz", tmp_path / "run", "--epochs", "1")[3:]
    assert runner.invoke(main, first).exit_code == 0
    changed = runner.invoke(main, [*first[:-2], "--epochs", "3", "--stem", "invariant", "--resume"])
    assert changed.exit_code == 2, changed.output
    assert changed.stderr.count("\n") == 1
    assert "--epochs (the run has epochs=1.0), --stem (the run has stem='plain')" in changed.stderr
    same = runner.invoke(main, [*first, "--resume"])  # the same options: the run goes on
    assert same.exit_code == 0, same.output


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--widths", "16,x,32"], "Invalid value for '--widths': expected comma-separated"),
        (["--milestones", "1;2"], "Invalid value for '--milestones': expected comma-separated"),
        (["--model", "resnet18", "--widths", "8,8,8"], "shape bagnet and fastnet, not resnet18"),
        (["--widths", "8,0,8"], "expected comma-separated positive integers, got '8,0,8'"),
        (["--epochs", "-3"], "Invalid value for '--epochs': -3.0 is not in the range x>0."),
        (["--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range x>=1."),
        (["--val-size", "-30"], "Invalid value for '--val-size': -30 is not in the range x>=0"),
        (["--max-train-images", "0"], "'--max-train-images': 0 is not in the range x>=1."),
    ],
)
def test_train_refuses_bad_shape_options_before_reading_data(tmp_path, extra, words):
    args = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and words in result.stderr, result.output
    assert not (tmp_path / "run").exists()


def test_train_resume_refuses_a_config_that_contradicts_the_run(tmp_path):
    """As the CLI's --resume does: the saved config is not silently adopted over a given one."""
    config = recipe("fast", epochs=2.0, **TINY)
    model = build_model(config, 4).state_dict()
    Run(tmp_path).save(Checkpoint(config, 0, list("abcd"), model, (16, 16)))
    changed = config.replace(epochs=3.0, stem="invariant")
    with pytest.raises(ConfigError, match=r"; --stem .*, --epochs \(the run has epochs=2\.0\): "):
        train(changed, quadrant_splits(), tmp_path, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"configured; --stem \(the run has stem='plain'\): "):
        train(changed, quadrant_splits(), tmp_path, resume=True, progress=False, given={"stem"})
    with pytest.raises(InputError, match=r"already holds a run: --resume continues it"):
        train_run(config, quadrant_splits(), tmp_path, progress=False)  # a new run over it
    assert Run(tmp_path).load().epoch == 0 and not Run(tmp_path).has_record()


def test_images_too_small_for_the_model_are_one_line_before_training(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=8, n_test=4, size=8)
    result = CliRunner().invoke(main, _cli_train(tmp_path / "d.npz", tmp_path / "run")[3:])
    assert result.exit_code == ExitStatus.USAGE, result.output
    line = result.stderr.strip()
    assert line.startswith("keyless: error: 8x8 images are too small for fastnet (")
    assert "\n" not in line and not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize(("model", "size", "fits"), [("fastnet", 8, False), ("fastnet", 16, True),
                                                     ("resnet18-imagenet", 8, True)])  # fmt: skip
def test_the_input_size_probe_passes_what_the_model_can_take(model, size, fits):
    config = recipe("fast", model=model).with_model_options()
    net = build_model(config, 4).train()
    if fits:
        net.check_input_size((size, size), model)
    else:
        with pytest.raises(ConfigError, match=f"{size}x{size} images are too small for {model}"):
            net.check_input_size((size, size), model)
    assert net.training  # left as it was


@pytest.mark.slow
def test_a_checkpoint_with_misshapen_optimizer_or_lookahead_tensors_is_one_line(tmp_path):
    config = recipe("fast", keys="independent", epochs=1, **TINY)
    train(config, quadrant_splits(64, 8), tmp_path, progress=False, device="cpu")
    run = Run(tmp_path)
    good = run.load()
    (tmp_path / "record.json").unlink()  # unfinished: a resume restores the states
    state = good.optimizer["state"]
    first = next(iter(state))
    for harm, says in [
        (lambda c: c.optimizer["state"][first].update(momentum_buffer=torch.zeros(3)),
         "its optimizer state's momentum_buffer of shape (3,) is not of its parameter's"),
        (lambda c: c.lookahead.update({next(iter(c.lookahead)): torch.zeros(3)}),
         "its lookahead state is not of this model"),
    ]:  # fmt: skip
        checkpoint = run.load()
        harm(checkpoint)
        run.save(checkpoint)
        with pytest.raises(InputError) as caught:
            train(config, quadrant_splits(64, 8), tmp_path, resume=True, progress=False,
                  device="cpu")  # fmt: skip
        assert str(caught.value).startswith(f"{run.checkpoint_path}: does not fit its config (")
        assert says in str(caught.value) and "\n" not in str(caught.value)
        run.save(good)
