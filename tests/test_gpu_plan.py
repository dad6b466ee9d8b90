import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.gpu import paper_networks_and_headline as gpu
from tests.synthetic import quadrant_splits, save_quadrant_npz

SCRIPT = Path(gpu.__file__)


def test_the_time_estimates_are_the_committed_h200_records():
    def per_epoch(pattern):
        records = [json.loads(p.read_text()) for p in sorted(gpu.RECORDS.glob(pattern))]
        assert records and all(r["machine"]["gpu"] == "NVIDIA H200" for r in records)
        return max(r["train_seconds"] / r["config"]["epochs"] for r in records)

    fastnet = per_epoch("invariant96-gpu-h200-2026-12/invariant96-60-s*/record.json")
    resnet = per_epoch("key-settings-gpu-h200-2026-11/paper-resnet18-independent/record.json")
    densenet = per_epoch("key-settings-gpu-h200-2026-11/paper-densenet-independent/record.json")
    assert {
        "fastnet": round(fastnet, 2),
        "resnet18": round(resnet, 2),
        "densenet": round(densenet, 1),
    } == gpu.H200_EPOCH_SECONDS
    assert gpu.estimate(gpu.HEADLINE["invariant96-60"], 50_000) == pytest.approx(0.72 * 60)
    wide = gpu.estimate(gpu.HEADLINE["invariant96-w192-60"], 45_000)
    assert wide == pytest.approx(0.72 * 2.25 * 60 * 0.9)  # widths 1.5x: compute 2.25x
    assert all(1.25 * gpu.estimate(c, 50_000) + 20 < gpu.SEED_RUN_LIMIT
               for c in gpu.HEADLINE.values())  # fmt: skip


def test_choose_takes_the_best_or_a_cheaper_candidate_within_one_standard_error():
    # one standard error at 0.9 on 5,000 images is 0.0042
    assert gpu.choose({"a": (0.900, 10.0), "b": (0.910, 20.0)}, 5000) == "b"
    assert gpu.choose({"a": (0.906, 10.0), "b": (0.910, 20.0)}, 5000) == "a"
    assert gpu.choose({"a": (0.910, 30.0), "b": (0.910, 20.0)}, 5000) == "b"


def test_the_budget_interrupts_at_its_deadline_but_not_inside_held_bookkeeping():
    budget = gpu.Budget(0.5 / 60)
    with pytest.raises(gpu.OutOfTime, match="ran out while a record was written"), budget:
        with budget.held():
            time.sleep(0.8)  # past the deadline: the alarm waits for the block's end
            finished = True
        time.sleep(5)
    assert finished and budget.left() < 0
    with pytest.raises(gpu.OutOfTime, match=r"x: needs about 9 s, 0 s of the budget left"):
        budget.check("x", 9.0)


def test_an_interrupted_run_keeps_its_wall_time_and_a_finished_one_is_skipped(
    tmp_path, monkeypatch
):
    calls = []

    def fake_train(config, splits, out, **kwargs):
        calls.append(out.name)
        time.sleep(0.05)
        if len(calls) == 1:
            raise gpu.OutOfTime("stopped")
        record = {"config": config.to_dict(), "train_seconds": 0.01, "test": {},
                  "machine": {"cpu": "some CPU", "cores": 2}}  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        (out / "record.json").write_text(json.dumps(record))
        return record

    monkeypatch.setattr(gpu, "train", fake_train)
    plan = gpu.Plan(tmp_path, gpu.Budget(1), "cpu", True, quadrant_splits(), "cmd")
    config = gpu.HEADLINE["invariant96-60"]
    with plan.budget, pytest.raises(gpu.OutOfTime):
        plan.run(tmp_path / "q", "r", config, "test seed")
    assert json.loads((tmp_path / "q" / "r" / "wall_seconds.json").read_text()) >= 0.05
    with plan.budget:
        record = plan.run(tmp_path / "q", "r", config, "test seed")
        again = plan.run(tmp_path / "q", "r", config, "test seed")
    assert record["role"] == "test seed" and record["wall_seconds"] >= 0.1
    assert again == json.loads((tmp_path / "q" / "r" / "record.json").read_text())
    assert again["wall_seconds"] == record["wall_seconds"] and again["role"] == "test seed"
    assert calls == ["r", "r"] and not (tmp_path / "q" / "r" / "wall_seconds.json").exists()


@pytest.mark.slow  # seconds: a child process or a real wait
def test_the_data_waits_for_every_webp_part_then_unpacks_once(tmp_path):
    save_quadrant_npz(tmp_path / "data.npz", n_train=100, n_test=50, size=32)
    tool = gpu.ROOT / "tools" / "webp_pack.py"
    subprocess.run([sys.executable, tool, "pack", tmp_path / "data.npz", tmp_path / "parts",
                    "--parts", "2"], check=True)  # fmt: skip
    parts = tmp_path / "parts"
    shutil.move(parts / "part-1", tmp_path / "later")
    assert gpu.load_data(parts, dry_run=True) is None
    shutil.move(tmp_path / "later", parts / "part-1")
    splits = gpu.load_data(parts, dry_run=True)
    original = np.load(tmp_path / "data.npz")
    assert (parts / "cifar10.npz").exists()
    assert torch.equal(splits["train"].images, torch.from_numpy(original["x_train"][:96]))
    assert torch.equal(splits["test"].labels, torch.from_numpy(original["y_test"][:32]).long())
    with pytest.raises(SystemExit, match="not CIFAR-10"):
        gpu.load_data(parts, dry_run=False)


def _script(*args, records):
    path = os.pathsep.join([str(gpu.ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, SCRIPT, "--dry-run", "--records", records, *args],
                          cwd=gpu.ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _only(folder, pattern):
    (found,) = folder.glob(pattern)
    return found


@pytest.mark.slow
def test_the_dry_run_writes_every_record_resumes_and_stops_at_its_budget(tmp_path):
    save_quadrant_npz(tmp_path / "data.npz", n_train=96, n_test=32)
    records = tmp_path / "records"
    data = ("--data", tmp_path / "data.npz")
    out = _script(*data, records=records)
    assert "stopped" not in out

    tests = json.loads(_only(records, "cuda-tests-cpu-*/cuda-tests.json").read_text())
    assert tests["exit_status"] == 0 and tests["passed"] == tests["failed"] == []
    assert any("test_invariant_is_the_same_on_cpu_and_cuda" in t for t in tests["skipped"])
    assert {"machine", "git_commit", "command", "seconds"} <= tests.keys()

    def runs(folder):
        found = {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/record.json")}
        for r in found.values():
            assert {"role", "wall_seconds", "train_seconds", "machine", "config"} <= r.keys()
            assert 0 < r["train_seconds"] <= r["wall_seconds"]
            assert r["test"] and all(0 <= v <= 1 for v in r["test"].values())
            assert r["config"]["epochs"] == 1 and r["config"]["precision"] == "fp32"
        return found

    headline = _only(records, "headline-validated-cpu-*")
    choice = json.loads((headline / "choice.json").read_text())
    found = runs(headline)
    name = choice["chosen"]
    assert name in gpu.HEADLINE and set(choice["candidates"]) == set(gpu.HEADLINE)
    assert set(found) == {*(f"val-{n}" for n in gpu.HEADLINE),
                          *(f"{name}-s{s}" for s in (0, 1, 2)), f"plain-{name}-s0"}  # fmt: skip
    assert all(found[f"val-{n}"]["config"]["val_size"] == 32 for n in gpu.HEADLINE)
    assert 0 <= found[f"val-{name}"]["history"][-1]["val_acc"] <= 1
    assert [found[f"{name}-s{s}"]["seed"] for s in (0, 1, 2)] == [0, 1, 2]
    assert found[f"{name}-s0"]["train_images"] == 96 and found[f"{name}-s0"]["role"] == "test seed"
    assert found[f"plain-{name}-s0"]["config"]["keys"] == "plain"
    summary = json.loads((headline / "summary.json").read_text())
    assert summary["chosen"] == name and summary["goal_met"] is False
    assert (
        0 <= summary["test"]["fresh_key"]["mean"] <= 1 and summary["test"]["fresh_key"]["std"] >= 0
    )
    assert summary["throughput_images_per_s"]["plain"] > 0
    assert set(summary["wall_seconds"]) == {f"{name}-s{s}" for s in (0, 1, 2)}
    assert "| 0,1,2 |" in (headline / "table.md").read_text()

    paper = _only(records, "paper-networks-cpu-*")
    found = runs(paper)
    chosen = json.loads((paper / "choice.json").read_text())["chosen"]
    lr = gpu.PEAK_LRS[[f"resnet18-lr{lr:g}" for lr in gpu.PEAK_LRS].index(chosen)]
    rows = {f"{n}-{s}-s0" for n in gpu.NETWORKS for s in gpu.SETTINGS}
    assert set(found) == rows | {f"val-resnet18-lr{lr:g}" for lr in gpu.PEAK_LRS}
    for n in rows:
        config = found[n]["config"]
        assert config["lr"] == lr and config["schedule"] == "triangle"
        assert config["label_smoothing"] == 0.1 and config["lr_end"] == 0.0
    assert found["resnet18-rekey-s0"]["config"]["rekey"] is True
    assert found["densenet-invariant-s0"]["config"]["stem"] == "invariant"
    assert len((paper / "table.md").read_text().splitlines()) == 2 + 8 + 2
    assert (paper / "chart.png").read_bytes().startswith(b"\x89PNG")

    stamps = {p: p.stat().st_mtime_ns for p in records.rglob("*.json")}
    out = _script(*data, records=records)  # everything finished: nothing trains or is written
    assert "training" not in out and "wrote" not in out
    assert stamps == {p: p.stat().st_mtime_ns for p in records.rglob("*.json")}

    shutil.rmtree(paper / "densenet-rekey-s0")
    document = tmp_path / "RESULTS.md"
    document.write_text("<!-- paper-networks-table -->\nnot yet\n<!-- /paper-networks-table -->\n")
    out = _script(*data, "--steps", "paper-networks", "--update", document, records=records)
    assert [line for line in out.splitlines() if line.startswith("training")] == [
        f"training {paper.name}/densenet-rekey-s0 (rekey)"
    ]
    assert "| densenet | rekey | fresh-key |" in document.read_text()

    out = _script(*data, "--budget-minutes", "0", records=tmp_path / "none")
    assert "stopped: cuda-tests: 0 s of the budget left" in out
    assert not list((tmp_path / "none").rglob("*.json"))
