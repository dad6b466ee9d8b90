"""Milliseconds per call of PE key generation for 224 x 224 images, by images per call.

    python benchmarks/speed/bench_keygen.py [--repeats 30] [--json OUT]

Each figure is the median (and minimum) over ``--repeats`` calls after one warm-up call; the
cold row is the first call in a fresh process, imports done (numba loads its compiled kernels).
Rows draw from the OS CSPRNG (one stream per call) or, as ``keyless encrypt`` does with --keys
seed or master-key, one stream per image id.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from functools import partial
from pathlib import Path

import torch  # noqa: F401  (imported before the cold call: that row times the kernels)

from keyless.cipher import PixelCipher
from keyless.keys import SeedSource
from keyless.runs import git_commit, machine

SIZE = (224, 224)


def timings(fn, repeats: int) -> dict[str, float]:
    """Median and minimum milliseconds of ``fn()`` over ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--note", default="", help="what else ran meanwhile (kept in the JSON)")
    args = parser.parse_args()
    cipher, seeded = PixelCipher(), SeedSource(0)
    start = time.perf_counter()
    cipher.keygen(1, SIZE)
    rows = {"cold first call, 1 image": {"ms": (time.perf_counter() - start) * 1e3}}
    for n in (1, 2, 4, 16, 64):
        ids = [f"photo/{i}" for i in range(n)]
        rows[f"CSPRNG, {n} per call"] = timings(partial(cipher.keygen, n, SIZE), args.repeats)
        rows[f"seed + ids, {n} per call"] = timings(
            partial(cipher.keygen, n, SIZE, seeded, ids), args.repeats
        )
    print("| draw | ms per call (median) | min | ms per image (median) |\n|---|---|---|---|")
    for name, row in rows.items():
        n = int(name.split(", ")[1].split()[0])
        median = row.get("median_ms", row.get("ms"))
        print(f"| {name} | {median:.2f} | {row.get('min_ms', median):.2f} | {median / n:.2f} |")
    if args.json:
        record = {"command": " ".join(["python", *sys.argv]), "date": date.today().isoformat(),
                  "commit": git_commit(), "load_average": os.getloadavg(), "machine": machine(),
                  "note": args.note, "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
