"""Training streamed from a sharded upload: peak memory on an upload larger than memory, and
images per second against the in-memory path on an upload that fits (same model, same machine).

    python benchmarks/scale/make_photos.py --data DATA --out PHOTOS --train 68000 --test 2000 \
        --workers 2
    keyless encrypt PHOTOS --out BIG --shard-size 1000 --workers 2
    python benchmarks/scale/make_photos.py --data DATA --out SMALL_PHOTOS --train 8000 \
        --test 1000 --workers 2
    keyless encrypt SMALL_PHOTOS --out SMALL --shard-size 1000 --workers 2
    python benchmarks/scale/bench_stream.py --big BIG --small SMALL --scratch /tmp/stream \
        --record benchmarks/records/scale-cpu-amd-2026-12/stream.json

Each run is ``keyless train --upload`` in a fresh process, one epoch of the ``imagenet`` recipe
on ``resnet18-imagenet`` (``--width``, default 16: a CPU-sized one) behind the key-invariant
stem, then its evaluation. Its memory is sampled over the whole process tree (the reader
processes included): the peak resident sizes of the processes alive at once, summed (an upper
bound: their peaks need not coincide, and a page two processes share counts in both; the figure
held against the 4 GB target), the largest sum of proportional set sizes seen every 2 s (shared
pages split among their processes: the memory the run takes), and the training process's own
peak. Images per
second are the record's training images over its epoch's seconds (start-up and evaluation
excluded). On the small upload the streamed and in-memory runs
alternate, ``--repeats`` times each, on a machine otherwise idle (say so if it was not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

from keyless.runs import git_commit, machine

TARGETS = {"peak_rss_gib_under": 4.0, "streamed_over_in_memory_at_least": 0.8}
KEYLESS = str(Path(sys.executable).with_name("keyless"))  # this environment's command


def process_tree(root: int) -> set[int]:
    """Process ``root`` and all its descendants now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew, tree = bool(children), tree | children
    return tree


def kib(path: str, field: str) -> int:
    """A ``field: N kB`` line of a /proc file, in bytes (0 if the process is gone)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":")), 0)


class MemorySampler(threading.Thread):
    """Samples a process tree until stopped, every 0.5 s: the sum of the peak resident sizes of
    the processes alive (each process's VmHWM, kept by the kernel, so no peak falls between
    samples) and the training process's own; every 2 s, the tree's proportional set size
    (shared pages split among their processes; costlier to read). Each figure: its largest."""

    def __init__(self, root: int) -> None:
        super().__init__()
        self.root, self.done = root, threading.Event()
        self.rss = self.own = self.pss = self.processes = 0

    def run(self) -> None:
        tick = 0
        while not self.done.wait(0.5):
            tree = process_tree(self.root)
            peaks = {pid: kib(f"/proc/{pid}/status", "VmHWM") for pid in tree}
            self.rss = max(self.rss, sum(peaks.values()))
            self.own = max(self.own, peaks.get(self.root, 0))
            self.processes = max(self.processes, len(tree))
            if tick % 4 == 0:
                pss = sum(kib(f"/proc/{pid}/smaps_rollup", "Pss") for pid in tree)
                self.pss = max(self.pss, pss)
            tick += 1


def timed_train(upload: Path, out: Path, width: int, extra: list[str]) -> dict[str, object]:
    """One ``keyless train`` run: its command, wall seconds, peak tree RSS and record figures."""
    shutil.rmtree(out, ignore_errors=True)
    command = [KEYLESS, "train", "--data", str(upload), "--upload", "--recipe", "imagenet",
               "--model", "resnet18-imagenet", "--width", str(width), "--epochs", "1",
               "--seed", "0", "--device", "cpu", "--out", str(out), *extra]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = MemorySampler(process.pid)
    sampler.start()
    _, stderr = process.communicate()
    sampler.done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr.decode()[-2000:]}")
    record = json.loads((out / "record.json").read_text())
    epoch = record["history"][0]
    return {
        "command": " ".join(["keyless", *command[1:]]),
        "wall_s": round(wall, 1),
        "peak_rss_gib": round(sampler.rss / 2**30, 3),
        "peak_pss_gib": round(sampler.pss / 2**30, 3),
        "peak_rss_training_process_gib": round(sampler.own / 2**30, 3),
        "most_processes_at_once": sampler.processes,
        "train_images": record["train_images"],
        "epoch_s": round(epoch["seconds"], 1),
        "images_per_s": round(record["train_images"] / epoch["seconds"], 1),
        "batch_order": record["batch_order"],
        "precision": record["precision"],
        "test": record["test"],
    }


def upload_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=Path, required=True, help="sharded upload, >= 10 GB")
    parser.add_argument("--small", type=Path, required=True, help="sharded upload that fits")
    parser.add_argument("--scratch", type=Path, required=True, help="run folders go here")
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-big", action="store_true", help="the small upload only")
    args = parser.parse_args()
    result: dict[str, object] = {
        "date": date.today().isoformat(),
        "git_commit": git_commit(),
        "machine": machine(),
        "targets": TARGETS,
        "load_average_before": os.getloadavg(),
    }
    if not args.skip_big:
        result["big"] = {"upload_bytes": upload_bytes(args.big),
                         **timed_train(args.big, args.scratch / "big", args.width, [])}  # fmt: skip
        print(json.dumps(result["big"], indent=1), flush=True)
    small: dict[str, list[dict[str, object]]] = {"streamed": [], "in_memory": []}
    for _ in range(args.repeats):
        for name, extra in (("streamed", []), ("in_memory", ["--in-memory"])):
            run = timed_train(args.small, args.scratch / name, args.width, extra)
            small[name].append(run)
            print(name, run["images_per_s"], "images/s, peak", run["peak_rss_gib"], "GiB",
                  flush=True)  # fmt: skip
    rates = {name: statistics.mean(r["images_per_s"] for r in runs) for name, runs in small.items()}
    ratio = round(rates["streamed"] / rates["in_memory"], 3)
    result["small"] = {"upload_bytes": upload_bytes(args.small), **small,
                       "streamed_over_in_memory": ratio}  # fmt: skip
    result["load_average_after"] = os.getloadavg()
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(result, indent=1) + "\n")
    print(f"streamed / in memory: {result['small']['streamed_over_in_memory']}")


if __name__ == "__main__":
    main()
