"""Wall time of ``keyless --help`` and of every command's ``--help``, beside ``python -c pass``.

The command line loads torch only inside the commands that need it, so help must answer at once.
Writes one JSON record (median of ``--repeats`` runs per command, seconds) with the machine.

    python benchmarks/speed/help_time.py --out benchmarks/records/cli-help-cpu-amd-2026-12/help.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

COMMANDS = ["encrypt", "decrypt", "fold", "keygen", "train", "evaluate", "report", "reproduce",
            "serve", "classify", "attack", "demo"]  # fmt: skip


def wall(argv: list[str], repeats: int) -> float:
    """Median wall seconds of running ``argv`` ``repeats`` times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    keyless = [sys.executable, "-m", "keyless.cli"]
    seconds = {"python -c pass": wall([sys.executable, "-c", "pass"], args.repeats)}
    seconds["keyless --help"] = wall([*keyless, "--help"], args.repeats)
    for command in COMMANDS:
        seconds[f"keyless {command} --help"] = wall([*keyless, command, "--help"], args.repeats)
    record = {
        "date": date.today().isoformat(),
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "repeats": args.repeats,
        "median_seconds": seconds,
        "command": "python benchmarks/speed/help_time.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for name, value in seconds.items():
        print(f"{value:6.3f} s  {name}")


if __name__ == "__main__":
    main()
