"""Photos per second of ``keyless encrypt`` into shards, by worker processes, against the time of
merely decoding the same files in Python.

    python benchmarks/scale/make_photos.py --data DATA --out PHOTOS --train 5000
    python benchmarks/scale/bench_encrypt.py --photos PHOTOS --scratch /tmp/scale-out \
        --workers 1 2 --record benchmarks/records/scale-cpu-amd-2026-12/encrypt.json

``--shard-size 0`` times the layout of one PNG per photo instead; run with another keyless on
``PYTHONPATH`` (one that predates shards and workers), it times that keyless (the record's
commit is the one imported).

Each timing runs in a fresh process after a warm-up encryption of 8 photos (which loads the
numba kernels), so start-up is excluded; the photos are read once before (a warm page cache for
every row). One worker is pinned to one core (its kernels could otherwise borrow the other);
more workers may use every core. Keys are independent (a fresh CSPRNG key per photo, the
default). Decoding is timed in one process: Pillow alone, and keyless's reader (Pillow plus the
input policy's checks), which encryption uses.

The machine may be shared: before each pair of timings a control loop (pure Python, no I/O)
runs in one process, then in two at once; its speed-up says how much of a second core was free
at the time, whatever keyless does; the CPU seconds of each run (its worker processes
included) say whether the work per photo changed with the number of workers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from keyless.runs import git_commit, machine

TARGETS = {"photos_per_s_per_core": 100, "two_workers_speed_up": 1.7, "times_decode": 4.0}


def photo_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def decode_seconds(files: list[Path], reader: str) -> float:
    """Seconds to decode every file once, in this process."""
    from keyless.data import read_image

    start = time.perf_counter()
    for path in files:
        if reader == "pillow":
            with Image.open(path) as image:
                np.asarray(image.convert("RGB"))
        else:
            read_image(path)
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU seconds (user and system) of this process and of its children that have ended."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF),
                      resource.getrusage(resource.RUSAGE_CHILDREN))
    )  # fmt: skip


def encrypt_seconds(photos: Path, out: Path, workers: int, shard_size: int) -> dict[str, float]:
    """Wall and CPU seconds of one :func:`encrypt_files` call into shards (one file per photo
    for a ``shard_size`` of 0), after a warm-up (this process; its worker processes have ended
    when it returns)."""
    from keyless.cipher import create_cipher
    from keyless.upload import encrypt_files

    if workers == 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    warm = out.with_name(out.name + "-warm")  # loads the kernels (forked workers inherit them)
    encrypt_files(photo_files(photos)[:8], warm, create_cipher())
    shutil.rmtree(warm)
    start, cpu = time.perf_counter(), cpu_seconds()
    # keyless before shards and workers took neither option
    layout = {"shard_size": shard_size} if shard_size else {}
    summary = encrypt_files([photos], out, create_cipher(), **layout,
                            **({"workers": workers} if workers > 1 else {}))  # fmt: skip
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if summary.errors or summary.skipped:
        raise SystemExit(f"unexpected: {summary}")
    return {"seconds": seconds, "cpu_seconds": cpu}


def spin(_: int = 0) -> float:
    """Seconds of a fixed pure-Python loop (the control)."""
    start, total = time.perf_counter(), 0
    for i in range(40_000_000):
        total += i
    return time.perf_counter() - start


def control_speed_up() -> float:
    """Work done per second by two processes spinning at once, over one process alone."""
    alone = spin()
    # forked: nothing to import inside the timed part (a spawned child would import this module)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(2) as pool:
        pool.map(spin, [0, 1], chunksize=1)  # both started, and this module loaded
        start = time.perf_counter()
        pool.map(spin, [0, 1], chunksize=1)
        together = time.perf_counter() - start
    return 2 * alone / together


def timed_run(args: argparse.Namespace, workers: int) -> dict:
    """One encryption in a fresh process, with the load average around it."""
    shutil.rmtree(args.scratch, ignore_errors=True)
    load_before = os.getloadavg()
    done = subprocess.run(
        [sys.executable, __file__, "--photos", str(args.photos), "--scratch", str(args.scratch),
         "--shard-size", str(args.shard_size), "--one", str(workers)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"the timed run failed:\n{done.stderr[-2000:]}")
    shutil.rmtree(args.scratch, ignore_errors=True)
    return {"workers": workers, **json.loads(done.stdout.splitlines()[-1]),
            "load_before": load_before, "load_after": os.getloadavg()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True, help="output folder (removed)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard-size", type=int, default=1000, help="0: one file per photo")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--record", type=Path, help="write the results here (JSON)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a timed child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(encrypt_seconds(args.photos, args.scratch, args.one, args.shard_size)))
        return
    files = photo_files(args.photos)
    decode_seconds(files, "pillow")  # the page cache
    decode = {reader: min(decode_seconds(files, reader) for _ in range(args.repeats))
              for reader in ("pillow", "keyless")}  # fmt: skip
    runs, controls = [], []
    for _ in range(args.repeats):
        controls.append(control_speed_up())
        runs += [timed_run(args, w) for w in args.workers]
    best = {w: min(r["seconds"] for r in runs if r["workers"] == w) for w in args.workers}
    rate = {w: len(files) / s for w, s in best.items()}
    cpu = {w: min(r["cpu_seconds"] for r in runs if r["workers"] == w) for w in args.workers}
    summary = {
        "photos": len(files),
        "image_size": list(Image.open(files[0]).size[::-1]),
        "photos_per_s": rate,
        "photos_per_s_per_worker": {w: r / w for w, r in rate.items()},
        "cpu_ms_per_photo": {w: 1e3 * c / len(files) for w, c in cpu.items()},
        "speed_up_over_one_worker": {w: r / rate[1] for w, r in rate.items()} if 1 in rate else {},
        "decode_seconds": decode,
        "control_speed_up_of_two_processes": controls,
        "times_pillow_decode": {w: s / decode["pillow"] for w, s in best.items()},
        "times_keyless_decode": {w: s / decode["keyless"] for w, s in best.items()},
    }
    median = {w: statistics.median(r["seconds"] for r in runs if r["workers"] == w)
              for w in args.workers}  # fmt: skip
    record = {
        "what": "keyless encrypt of a photo folder into "
        + ("shards" if args.shard_size else "one PNG per photo")
        + ", independent keys",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": date.today().isoformat(),
        "commit": git_commit(),
        "machine": machine(),
        "shard_size": args.shard_size,
        "targets": TARGETS,
        "runs": runs,
        "median_seconds": median,
        **summary,
    }
    print(json.dumps(summary, indent=2))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
