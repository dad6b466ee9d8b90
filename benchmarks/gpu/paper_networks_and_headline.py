"""The paper's networks at a real budget and the independent-key headline like for like, on a
lent GPU: one script that runs three steps in order, writes a record per finished run or step,
resumes, and stops cleanly at a time budget.

1. ``cuda-tests``: the tests marked ``cuda`` (``pytest -m cuda``) on the GPU; the ids that passed,
   failed and were skipped go to ``cuda-tests.json`` (rerun until it passes).
2. ``headline``: the independent-key recipe and budget chosen on 5,000 training images held out
   (seed 0's split) among :data:`HEADLINE` by :func:`choose` (``choice.json``); the choice trained
   on all 50,000 images for seeds 0, 1, 2 and tested on plain and fresh-key test images with and
   without TTA, each record with its wall time; then its plain twin (same net and epochs, plain
   images and stem, seed 0). ``summary.json``: means over the seeds, the goal (>= 94.0 % without
   TTA on fresh-key and plain test images, above the best published 93.51 % without TTA), the
   seed-runs over 5 minutes, and the throughput of independent-key against plain training.
3. ``paper-networks``: ResNet-18 with the fast schedule :data:`ONE_CYCLE` (one-cycle, label
   smoothing 0.1, 30 epochs), its peak lr chosen among :data:`PEAK_LRS` on the validation split of
   faithful independent keys (``choice.json``); then ResNet-18, and DenseNet-BC-100 if time is
   left, in each of :data:`SETTINGS` (plain images; faithful independent keys, encrypted once;
   re-keyed every epoch; the invariant stem), seed 0. ``table.md`` and ``chart.png`` are written
   from the finished records (``--update RESULTS.md`` also puts the table between its
   ``paper-networks-table`` markers).

Records go to ``RECORDS/QUESTION-MACHINE-YYYY-MM/`` (``cuda-tests``, ``headline-validated``,
``paper-networks``; ``gpu-h100``, ``gpu-h200``...), each run a folder with keyless's
``record.json`` plus ``wall_seconds`` and ``role``. A run or step whose JSON exists under
``--records`` or in this checkout's ``benchmarks/records`` is skipped; an interrupted run resumes
from its checkpoint. A run starts only if its estimate fits in what is left of
``--budget-minutes``; at the deadline the run in progress stops (keeping its last checkpoint) and
the tables are written from what is finished.

Expected GPU time. The only GPU records are from one H200 (bf16, torch 2.11); their training
seconds per epoch of 50,000 images (``train_seconds`` over the epochs; evaluation, encryption and
checkpoints excluded) are: fastnet 128/512/512 residual behind the invariant stem 0.69-0.72 s
(``benchmarks/records/invariant96-gpu-h200-2026-12/invariant96-60-s*``), the same on plain images
0.65-0.66 s (``plain96-s*`` there), ResNet-18 4.39 s and DenseNet-BC-100 23.7 s at batch 128
(``benchmarks/records/key-settings-gpu-h200-2026-11/paper-{resnet18,densenet}-independent``).
Assumed, not measured: fastnet time grows with the square of its widths (192/768/768: 2.25x),
batch 512 is no slower per image than batch 128, and an H100 is no faster than the H200. Hence,
training alone on an H200:

- step 1: no GPU record; 8 s here (2-core AMD EPYC, torch 2.13) to collect the suite and skip its
  20 ``cuda`` tests;
- step 2: validation 0.9 x (60 x 0.72 + 40 x 1.62 + 60 x 1.62) = 185 s; three seeds of the choice
  130 s (``invariant96-60``) to 292 s (``invariant96-w192-60``), each at most 97 s, far inside
  the 5 minutes allowed a seed-run; the plain twin 40 to 89 s (0.66 s an epoch, x 2.25 wide):
  6 to 9.5 minutes in all;
- step 3: ResNet-18's validation 2 x 0.9 x 30 x 4.39 = 237 s and its four rows 4 x 30 x 4.39 =
  527 s, 12.7 minutes; DenseNet-BC-100's four rows 4 x 30 x 23.7 = 2,844 s, 47 minutes, each run
  longer than one 10-minute command of a lent machine (the script does not start a run that
  does not fit).

The gate (:meth:`Plan.run`) allows ``speed`` x the estimate + 20 s a run, ``speed`` 1.25 until
runs have finished, then the largest wall-time-over-estimate measured: overheads and a slower
GPU count from the first finished run on. By these estimates the 8.5 minutes of a lease's second
call hold step 2 when the choice makes it 6 minutes of training, not when it makes it 9.5; what
is left of it, and step 3, wait for later leases.

On a lent machine (benchmarks/README.md, "GPU"): here, once, ::

    python benchmarks/gpu/paper_networks_and_headline.py --prepare --data DATA

packs CIFAR-10 (``DATA``: the npz) into two lossless WebP parts of 50 MB and downloads the 13
wheels (8.8 MB) the machine's Python lacks, under ``runs/gpu/`` (ignored by git). Then two device
calls in a row (the machine stays warm 30 s), each the command :data:`DEVICE_COMMAND` with
``timeout_s`` 600, the first carrying ``runs/gpu/whl`` and ``runs/gpu/cifar/part-0`` (63.5 MB of
the 67.1 MB a call carries; it runs step 1), the second ``runs/gpu/whl`` and
``runs/gpu/cifar/part-1`` (unpacks CIFAR-10, checks its hash, runs steps 2 and 3 for 8.5
minutes). Each returns ``log.txt`` and ``records.tgz``: ``tar xzf records.tgz -C
benchmarks/records`` here, check each record's ``git_commit`` (a device copy may report a stale
one), and commit. A later lease runs the same two calls and goes on where the records stop.

A dry run on a CPU: tiny sizes (the first 96 training and 32 test images, 32 of them held out,
batches of 32, 1 epoch, fastnet 16/32/32, ResNet-18 of width 8, DenseNet-BC of depth 10, a cutout
of at most half the image, fp32), records under ``runs/dry-run``::

    python benchmarks/gpu/paper_networks_and_headline.py --dry-run --data DATA
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import torch

from keyless._atomic import write_bytes_atomic
from keyless.data import ImageSet, fingerprint, load_splits
from keyless.runs import (
    Run,
    RunRecord,
    TrainConfig,
    git_commit,
    machine,
    mean_table,
    update_markdown,
)
from keyless.train import recipe, train

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "benchmarks" / "records"
STAGE = Path("runs/gpu")  # what --prepare makes for the lent machine (ignored by git)
CIFAR10 = "a6b60988a0e37c7e06eae9aa7e607521ced3b243735aebf5f208745e8852e089"  # fingerprint()
STEPS = ("cuda-tests", "headline", "paper-networks")
SEEDS = (0, 1, 2)
VAL_SIZE = 5000
GOAL = 0.94  # without TTA, on fresh-key and plain test images (mean of 3 seeds)
PUBLISHED = 0.9351  # ShakeDrop PyramidNet-110, 200 epochs, without TTA (Madono et al., 2023)
SEED_RUN_LIMIT = 300.0  # seconds of one GPU per headline seed-run

WIDE = {"widths": [192, 768, 768], "residual": True}
# The headline's candidates: airbench96 on the fold (`invariant96`) at the 60 epochs of the
# current headline, and 1.5x wider at two budgets.
HEADLINE: dict[str, TrainConfig] = {
    "invariant96-60": recipe("invariant96", epochs=60),
    "invariant96-w192-40": recipe("invariant96", epochs=40, model_kwargs=WIDE),
    "invariant96-w192-60": recipe("invariant96", epochs=60, model_kwargs=WIDE),
}
# The paper networks' fast schedule: the paper recipe's SGD (momentum 0.9, decay 5e-4, a mean
# loss, shifts of up to 4 pixels and flips) in 30 epochs of batch 512 with Nesterov momentum, a
# one-cycle lr (a linear rise from 0.1x over the first 20 % of the steps, then a linear fall to
# zero) and label smoothing 0.1; the peak lr is chosen on validation.
ONE_CYCLE: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 512,
    "nesterov": True,
    "schedule": "triangle",
    "warmup_fraction": 0.2,
    "lr_start": 0.1,
    "lr_end": 0.0,
    "label_smoothing": 0.1,
}
PEAK_LRS = (0.2, 0.4)
SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {"keys": "plain"},
    "independent": {"keys": "independent"},
    "rekey": {"keys": "independent", "rekey": True},
    "invariant": {"keys": "independent", "stem": "invariant"},
}
NETWORKS = ("resnet18", "densenet")

# Train seconds per epoch of 50,000 images on one H200 (see the docstring for the records).
H200_EPOCH_SECONDS = {"fastnet": 0.72, "resnet18": 4.39, "densenet": 23.7}
DRY = {"epochs": 1.0, "batch_size": 32, "precision": "fp32"}
DRY_MODELS: dict[str, dict[str, Any]] = {
    "fastnet": {"widths": [16, 32, 32], "residual": True},
    "resnet18": {"width": 8},
    "densenet": {"depth": 10, "growth": 4},
}
DRY_IMAGES = {"train": 96, "test": 32}
DRY_VAL_SIZE = 32

# The Python packages keyless needs that the lent machines' image lacks (versions from
# constraints.txt), and the device command (see the docstring).
DEVICE_WHEELS = (
    "cryptography",
    "cffi",
    "pycparser",
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic_core",
    "annotated-types",
    "typing-inspection",
    "opentelemetry-api",
    "uvicorn",
    "httptools",
    "python-multipart",
)
DEVICE_COMMAND = (
    "export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:$PWD/runs/gpu/site; [ -d runs/gpu/site ] || "
    "python3 -m pip install -q --no-index --no-deps --no-compile --target runs/gpu/site "
    "runs/gpu/whl/*.whl; python3 benchmarks/gpu/paper_networks_and_headline.py --data "
    "runs/gpu/cifar --records runs/gpu/records --budget-minutes 8.5 2>&1 | tee $OUT/log.txt; "
    "tar czf $OUT/records.tgz --exclude=checkpoint.pt --exclude=wall_seconds.json "
    "-C runs/gpu/records ."
)


class OutOfTime(Exception):
    """The time budget is spent, or the next run would not fit in what is left."""


class Budget:
    """A deadline ``minutes`` after entering ``with``: :meth:`check` refuses a run that would
    not fit; at the deadline an alarm interrupts whatever runs (main thread only)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = 60 * minutes
        self.deadline = math.inf
        self.holding = self.expired = False

    def __enter__(self) -> Budget:
        self.handler = signal.signal(signal.SIGALRM, self._expire)
        self.deadline = time.monotonic() + self.seconds
        if self.seconds > 0:  # none left: check() refuses the first run
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.handler)

    def _expire(self, signum: int, frame: object) -> None:
        self.expired = True
        if not self.holding:
            raise OutOfTime("the time budget ran out during a run (it keeps its last checkpoint)")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, what: str, seconds: float | None) -> None:
        if self.left() <= 0 or (seconds is not None and seconds > self.left()):
            need = "" if seconds is None else f" needs about {seconds:.0f} s,"
            raise OutOfTime(f"{what}:{need} {max(self.left(), 0):.0f} s of the budget left")

    @contextmanager
    def held(self) -> Iterator[None]:
        """Bookkeeping the deadline does not cut: an alarm inside takes effect at its end."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.expired:
            raise OutOfTime("the time budget ran out while a record was written")


def estimate(config: TrainConfig, images: int) -> float:
    """Seconds of training for ``config`` on ``images`` images on one H200, from the records
    (fastnet scaled by the square of its middle width against 512), without any margin."""
    seconds = H200_EPOCH_SECONDS[config.model]
    if config.model == "fastnet":
        seconds *= (config.model_kwargs.get("widths", [64, 256, 256])[1] / 512) ** 2
    return seconds * config.epochs * images / 50_000


def choose(results: dict[str, tuple[float, float]], images: int) -> str:
    """The candidate with the best validation accuracy, or the cheapest of those within one
    binomial standard error of it on ``images`` images; ``results``: name -> (accuracy, seconds)."""
    best = max(accuracy for accuracy, _ in results.values())
    close = [
        n for n, (a, _) in results.items() if a >= best - math.sqrt(best * (1 - best) / images)
    ]
    return min(close, key=lambda name: results[name][1])


def machine_tag() -> str:
    """``gpu-h100`` for an "NVIDIA H100 80GB HBM3", ``cpu`` without CUDA."""
    if not torch.cuda.is_available():
        return "cpu"
    return "gpu-" + torch.cuda.get_device_name().lower().removeprefix("nvidia ").split()[0]


def mean_std(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


@dataclasses.dataclass
class Plan:
    """Where records go, what is finished, the data, the budget, and the dry run's shrinking."""

    records: Path
    budget: Budget
    device: str
    dry_run: bool
    splits: dict[str, ImageSet] | None
    command: str
    speed: float = 1.25  # wall seconds over estimate(): at first a guess, then the most measured
    failed: bool = False

    def folder(self, question: str) -> Path:
        """The question's record folder: an existing one of this machine (any month, the latest)
        under --records or the checkout's records, else a new one of this month."""
        tag = f"{question}-{machine_tag()}-"
        for root in dict.fromkeys([self.records, RECORDS]):
            found = sorted(p for p in root.glob(tag + "[0-9]*-[0-9]*") if p.is_dir())
            if found:
                return self.records / found[-1].name
        return self.records / (tag + date.today().strftime("%Y-%m"))

    def done(self, path: Path) -> dict[str, Any] | None:
        """The JSON at ``path`` (relative to --records), here or in the checkout's records."""
        for root in dict.fromkeys([self.records, RECORDS]):
            candidate = root / path.relative_to(self.records)
            if candidate.is_file():
                return json.loads(candidate.read_text())
        return None

    @property
    def val_size(self) -> int:
        return DRY_VAL_SIZE if self.dry_run else VAL_SIZE

    def shrink(self, config: TrainConfig) -> TrainConfig:
        """The dry run's tiny version of ``config``; ``config`` itself otherwise."""
        if not self.dry_run:
            return config
        assert self.splits is not None
        side = min(self.splits["train"].images.shape[1:3])
        changes = {
            **DRY,
            "val_size": min(config.val_size, self.val_size),
            "cutout": min(config.cutout, side // 2),
        }
        if config.model in DRY_MODELS:
            changes["model_kwargs"] = DRY_MODELS[config.model]
        return dataclasses.replace(config, **changes)

    def step(
        self,
        path: Path,
        make: Callable[[], dict[str, Any]],
        finished: Callable[[dict[str, Any]], bool] = lambda found: True,
    ) -> dict[str, Any]:
        """A step's JSON: read if there and ``finished``, else made by ``make`` and written."""
        if (found := self.done(path)) is not None and finished(found):
            return found
        result = {
            **make(),
            "machine": machine(),
            "git_commit": git_commit(),
            "command": self.command,
        }
        with self.budget.held():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, (json.dumps(result, indent=2, sort_keys=True) + "\n").encode())
        print(f"wrote {path}", flush=True)
        return result

    def run(self, folder: Path, name: str, config: TrainConfig, role: str) -> dict[str, Any]:
        """The record of run ``name``: read if finished, else trained (resumed from its
        checkpoint), with its wall time (all attempts) and role added."""
        out = folder / name
        if (found := self.done(out / "record.json")) is not None and "role" in found:
            return found
        assert self.splits is not None
        config = self.shrink(config)
        images = len(self.splits["train"]) - config.val_size
        seconds = None
        if self.device.startswith("cuda"):
            seconds = self.speed * estimate(config, images) + 20
        self.budget.check(f"{folder.name}/{name}", seconds)
        print(f"training {folder.name}/{name} ({role})", flush=True)
        wall_file = out / "wall_seconds.json"  # the wall time of earlier, interrupted attempts
        earlier = json.loads(wall_file.read_text()) if wall_file.exists() else 0.0
        start = time.perf_counter()
        try:
            record = train(
                config,
                self.splits,
                out,
                resume=True,
                device=self.device,
                progress=not self.dry_run,
                checkpoint_minutes=2,
                command=f"{self.command}  # run {name}",
            )
        except BaseException:
            out.mkdir(parents=True, exist_ok=True)
            wall_file.write_text(json.dumps(earlier + time.perf_counter() - start))
            raise
        record = {**record, "wall_seconds": earlier + time.perf_counter() - start, "role": role}
        with self.budget.held():
            Run(out).write_record(RunRecord.model_validate(record))
            wall_file.unlink(missing_ok=True)
        if self.device.startswith("cuda"):
            self.speed = max(self.speed, record["wall_seconds"] / estimate(config, images))
        return record

    def choice(self, folder: Path, val: dict[str, dict[str, Any]], what: str) -> str:
        """The candidate :func:`choose` picks from the validation runs ``val`` (``choice.json``)."""
        results = {n: (r["history"][-1]["val_acc"], r["train_seconds"]) for n, r in val.items()}
        found = self.step(
            folder / "choice.json",
            lambda: {
                "chosen": choose(results, self.val_size),
                "choosing": what,
                "rule": "the best validation accuracy without TTA (the last epoch's), or the "
                "cheapest candidate (train seconds) within one binomial standard error of it",
                "validation_images": self.val_size,
                "candidates": {
                    n: {"val_acc": a, "train_seconds": s} for n, (a, s) in results.items()
                },
            },
        )
        return found["chosen"]


def cuda_tests(plan: Plan) -> dict[str, Any]:
    """Step 1: ``pytest -m cuda`` in a subprocess; ids by outcome and pytest's exit status."""
    plan.budget.check("cuda-tests", None)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "cuda",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "tests",
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT)  # the budget's alarm stops it
        seconds = time.perf_counter() - start
        outcomes: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
        for case in ET.parse(report).iter("testcase") if report.exists() else []:
            outcome = "passed"
            if case.find("skipped") is not None:
                outcome = "skipped"
            elif case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            outcomes[outcome].append(f"{case.get('classname')}::{case.get('name')}")
    return {
        "pytest": " ".join(command[1:]),
        "exit_status": done.returncode,
        "seconds": seconds,
        **outcomes,
    }


def headline(plan: Plan) -> None:
    """Step 2: the recipe and budget on validation, 3 test seeds, the plain twin, a summary."""
    folder = plan.folder("headline-validated")
    val = {
        name: plan.run(
            folder, f"val-{name}", config.replace(val_size=VAL_SIZE, seed=0), "validation candidate"
        )
        for name, config in HEADLINE.items()
    }
    name = plan.choice(folder, val, "the independent-key recipe and budget")
    chosen = HEADLINE[name]
    tests = [
        plan.run(folder, f"{name}-s{seed}", chosen.replace(seed=seed), "test seed")
        for seed in SEEDS
    ]
    twin = plan.run(
        folder, f"plain-{name}-s0", chosen.replace(keys="plain", stem="plain", seed=0), "plain twin"
    )
    plan.step(folder / "summary.json", lambda: headline_summary(name, tests, twin))


def headline_summary(
    name: str, tests: list[dict[str, Any]], twin: dict[str, Any]
) -> dict[str, Any]:
    """Means over the seeds, the goal, the seed-runs' wall times and the throughput."""
    scores = {
        s: mean_std([r["test"][s] for r in tests])
        for s in ("fresh_key", "plain", "fresh_key_tta", "plain_tta")
    }

    def rate(record: dict[str, Any]) -> float:
        epochs = record["config"]["epochs"]
        return record["train_images"] * epochs / record["train_seconds"]

    walls = {f"{name}-s{r['seed']}": r["wall_seconds"] for r in tests}
    return {
        "chosen": name,
        "seeds": [r["seed"] for r in tests],
        "test": scores,
        "goal_no_tta": GOAL,
        "goal_met": min(scores["fresh_key"]["mean"], scores["plain"]["mean"]) >= GOAL,
        "published_no_tta": PUBLISHED,
        "wall_seconds": walls,
        "over_seed_run_limit": [n for n, s in walls.items() if s > SEED_RUN_LIMIT],
        "plain_twin_test": twin["test"],
        "throughput_images_per_s": {
            "independent": rate(tests[0]),
            "plain": rate(twin),
            "independent_over_plain": rate(tests[0]) / rate(twin),
        },
    }


def paper_config(network: str, lr: float, **changes: Any) -> TrainConfig:
    return recipe("paper", model=network, lr=lr, **ONE_CYCLE, **changes)


def paper_networks(plan: Plan) -> None:
    """Step 3: the peak lr on validation (ResNet-18, faithful keys), then every network and
    setting."""
    folder = plan.folder("paper-networks")
    lrs = {f"resnet18-lr{lr:g}": lr for lr in PEAK_LRS}
    val = {
        name: plan.run(
            folder,
            f"val-{name}",
            paper_config("resnet18", lr, val_size=VAL_SIZE, seed=0),
            "validation candidate",
        )
        for name, lr in lrs.items()
    }
    lr = lrs[plan.choice(folder, val, "the peak lr of ONE_CYCLE, on faithful independent keys")]
    for network in NETWORKS:
        for setting, changes in SETTINGS.items():
            config = paper_config(network, lr, seed=0, **changes)
            plan.run(folder, f"{network}-{setting}-s0", config, setting)


def write_tables(plan: Plan, update: Path | None) -> None:
    """From the finished records under --records: the headline's ``table.md`` (its test seeds
    and plain twin, ``keyless report --mean``), the paper networks' ``table.md`` and
    ``chart.png`` (and the table in ``update``)."""
    for question, make in (
        ("headline-validated", _headline_table),
        ("paper-networks", _paper_networks_files),
    ):
        folder = plan.folder(question)
        records = [
            json.loads(p.read_text())
            for p in sorted(folder.glob("*/record.json"))
            if not p.parent.name.startswith("val-")
        ]
        records = [r for r in records if "role" in r]
        if records:
            make(folder, records, update)


def _headline_table(folder: Path, records: list[dict[str, Any]], update: Path | None) -> None:
    (folder / "table.md").write_text(mean_table(records))


def _paper_networks_files(folder: Path, records: list[dict[str, Any]], update: Path | None) -> None:
    table = paper_networks_table(records)
    (folder / "table.md").write_text(table)
    paper_networks_chart(records, folder / "chart.png")
    if update is not None:
        update_markdown(update, "paper-networks-table", table)


def _rows(records: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(network, setting, record) in the order of NETWORKS and SETTINGS."""
    by_name = {(r["config"]["model"], r["role"]): r for r in records}
    for network in NETWORKS:
        for setting in SETTINGS:
            if (network, setting) in by_name:
                yield network, setting, by_name[network, setting]


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def paper_networks_table(records: list[dict[str, Any]]) -> str:
    """Markdown: per network and setting, the accuracy on the images the setting serves (plain
    for plain training, fresh-key otherwise) and on plain images, without and with TTA, the gap
    to plain training without TTA, and the times."""
    lines = [
        "| network | training | test images | no TTA | TTA | plain test images, no TTA "
        "| gap to plain training, no TTA | epochs | peak lr | train s | wall s | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    plain = {n: r["test"]["plain"] for n, s, r in _rows(records) if s == "plain"}
    for network, setting, r in _rows(records):
        images = "plain" if setting == "plain" else "fresh_key"
        gap = plain[network] - r["test"][images] if network in plain else None
        lines.append(
            f"| {network} | {setting} | {images.replace('_', '-')} | {_percent(r['test'][images])} "
            f"| {_percent(r['test'].get(images + '_tta'))} | {_percent(r['test']['plain'])} "
            f"| {_percent(gap)} | {r['config']['epochs']:g} | {r['config']['lr']:g} "
            f"| {r['train_seconds']:.0f} | {r['wall_seconds']:.0f} "
            f"| {r['machine'].get('gpu', r['machine']['cpu'])} |"
        )
    lines += [
        "",
        "Test accuracy in %, seed 0; fresh-key: test images under keys no training image had; "
        "TTA: flip-and-shift "
        "test-time augmentation. Schedule: `ONE_CYCLE` in "
        "`benchmarks/gpu/paper_networks_and_headline.py` (peak lr chosen on validation).",
    ]
    return "\n".join(lines) + "\n"


def paper_networks_chart(records: list[dict[str, Any]], path: Path) -> None:
    """Bars: per network, each setting's accuracy without TTA on the images it serves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(_rows(records))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, (_, setting, r) in enumerate(rows):
        value = 100 * r["test"]["plain" if setting == "plain" else "fresh_key"]
        ax.bar(i, value, color=f"C{list(SETTINGS).index(setting)}")
        ax.text(i, value + 0.5, f"{value:.1f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(rows)), [f"{n}\n{s}" for n, s, _ in rows], fontsize=8)
    ax.set_ylabel("test accuracy %, no TTA")
    ax.set_ylim(0, 100)
    ax.set_title("The paper's networks: plain training against independent keys (seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_data(path: Path, dry_run: bool) -> dict[str, ImageSet] | None:
    """The splits of an npz, or of a folder of ``tools/webp_pack.py`` parts once all have
    arrived (unpacked to ``cifar10.npz`` beside them); ``None`` while parts are missing. A real
    run refuses anything but CIFAR-10; a dry run keeps the first few images."""
    if path.is_dir():
        npz = path / "cifar10.npz"
        if not npz.exists():
            labels = next(path.glob("part-*/labels.json"), None)
            tiles = len(list(path.glob("part-*/*.webp")))
            counts = json.loads(labels.read_text()).values() if labels else []
            if labels is None or tiles != sum(math.ceil(len(c["values"]) / 2500) for c in counts):
                return None  # 2,500 images a tile (tools/webp_pack.py)
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "tools" / "webp_pack.py"),
                    "unpack",
                    *map(str, sorted(path.glob("part-*"))),
                    str(npz),
                ],
                check=True,
            )
        path = npz
    splits = load_splits(path)
    if dry_run:
        return {
            name: split.subset(slice(0, DRY_IMAGES.get(name, 64))) for name, split in splits.items()
        }
    if fingerprint(splits) != CIFAR10:
        raise SystemExit(f"{path}: not CIFAR-10 as this project has it (sha256 {CIFAR10})")
    return splits


def prepare(data: Path) -> None:
    """Here, before a lease: CIFAR-10 in two WebP parts and the device's missing wheels."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "webp_pack.py"),
            "pack",
            str(data),
            str(STAGE / "cifar"),
            "--parts",
            "2",
        ],
        check=True,
    )
    pins = dict(
        line.split("==") for line in (ROOT / "constraints.txt").read_text().split() if "==" in line
    )
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    wanted = [f"{n}=={pins[n.lower().replace('_', '-')]}" for n in DEVICE_WHEELS]
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28, 34)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version=3.12",
            "--implementation=cp",
            *platforms,
            "--platform=manylinux2014_x86_64",
            "-d",
            str(STAGE / "whl"),
            *wanted,
        ],
        check=True,
    )
    print(
        f"ready under {STAGE}; device command (two calls, see this script's docstring):\n"
        f"{DEVICE_COMMAND}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CIFAR-10 npz, or a folder of tools/webp_pack.py parts",
    )
    parser.add_argument(
        "--records", type=Path, help="default benchmarks/records (dry run: runs/dry-run)"
    )
    parser.add_argument("--budget-minutes", type=float, default=14.0)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated, in order")
    parser.add_argument("--device", help="default cuda (dry run: cpu)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on a CPU")
    parser.add_argument("--update", type=Path, help="document for the paper-networks table")
    parser.add_argument("--prepare", action="store_true", help="stage data and wheels here")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.data)
        return 0
    steps = args.steps.split(",")
    if unknown := set(steps) - set(STEPS):
        parser.error(f"unknown steps {sorted(unknown)}; known: {', '.join(STEPS)}")
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: use --dry-run for the CPU dry run")
    records = args.records or (ROOT / "runs" / "dry-run" if args.dry_run else RECORDS)
    command = " ".join(["python", *sys.argv]) if argv is None else " ".join(argv)
    plan = Plan(records, Budget(args.budget_minutes), device, args.dry_run, None, command)
    try:
        with plan.budget:
            run_steps(plan, steps, args.data)
    except OutOfTime as stop:
        print(f"stopped: {stop}", flush=True)
    write_tables(plan, args.update)
    return int(plan.failed)


def run_steps(plan: Plan, steps: list[str], data: Path) -> None:
    """The steps named, in order; those after the tests only once all of ``data`` is here."""
    if "cuda-tests" in steps:
        result = plan.step(
            plan.folder("cuda-tests") / "cuda-tests.json",
            lambda: cuda_tests(plan),
            lambda found: found["exit_status"] == 0,
        )
        plan.failed = result["exit_status"] != 0
    if not {"headline", "paper-networks"} & set(steps):
        return
    plan.splits = load_data(data, plan.dry_run)
    if plan.splits is None:
        print(f"{data}: not every part of the data is here yet; the steps after the tests wait")
        return
    if "headline" in steps:
        headline(plan)
    if "paper-networks" in steps:
        paper_networks(plan)


if __name__ == "__main__":
    sys.exit(main())
