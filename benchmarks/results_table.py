"""The README's results table, generated from run records: per setting, the test accuracy's mean ±
sample standard deviation over its seeds without and with TTA, and the best published
independent-key figure (without TTA) beside them.

    python benchmarks/results_table.py                     # print the table
    python benchmarks/results_table.py --update README.md  # rewrite it in place

Each row's runs must differ only in their seed (grouped as ``keyless report --mean`` groups
them). ``--update`` rewrites what lies between a document's ``<!-- results-table -->`` and
``<!-- /results-table -->`` lines, with record links relative to that document.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyless.runs import (
    machine_label,
    mean_std,
    read_record,
    seed_groups,
    update_markdown,
    with_upload_columns,
)

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "benchmarks" / "records"


@dataclass(frozen=True)
class Row:
    label: str
    runs: str  # a glob of run folders under benchmarks/records
    images: str  # the test images scored: "plain" or "fresh_key"


ROWS = (
    Row("Plain training, no encryption (fastnet 64/256/256, recipe `fast`)",
        "invariant96-gpu-h200-2026-12/plain-s*", "plain"),
    Row("Plain training, no encryption (airbench96's net, recipe `invariant96`)",
        "invariant96-gpu-h200-2026-12/plain96-s*", "plain"),
    Row("Faithful independent-key PE: fastnet 32/64/128 on raw ciphertexts (recipe "
        "`invariant`, plain stem)", "privacy-frontier-cpu-amd-2026-12/pe-raw-s[0-9]", "fresh_key"),
    Row("Invariant stem at the same budget (recipe `invariant`: fastnet 32/64/128)",
        "privacy-frontier-cpu-amd-2026-12/pe-s[0-9]", "fresh_key"),
    Row("Invariant stem, CPU budget (recipe `invariant`: fastnet 64/256/256)",
        "invariant-recipe-cpu-amd-2026-12/full-invariant-s*", "fresh_key"),
    Row("Invariant stem, GPU budget (recipe `invariant96`: airbench96's net and recipe)",
        "invariant96-gpu-h200-2026-12/invariant96-s*", "fresh_key"),
    Row("Invariant stem, `invariant96` for 60 epochs (chosen after reading the 31-epoch test "
        "figures)", "invariant96-gpu-h200-2026-12/invariant96-60-s*", "fresh_key"),
)  # fmt: skip
# Madono et al. (ScrambleMix, PSIVT 2023), random PE on CIFAR-10: the best published figure.
PUBLISHED = (
    "| Best published independent-key PE: ShakeDrop PyramidNet-110 (Madono et al., PSIVT 2023; "
    "keys drawn from 8 fixed ones) | fresh-key | **93.51** | not used | not reported | 200 "
    "| not reported | the paper |"
)
HEADER = (
    "| training | test images | accuracy %, no TTA | with TTA | seeds | epochs | machine "
    "| records |\n|---|---|---|---|---|---|---|---|"
)
NOTE = """\
Accuracy on the 10,000 CIFAR-10 test images: mean ± sample standard deviation over the seeds
named. TTA is flip-and-shift test-time augmentation; the published figure is without it, so
compare it with the no-TTA column (in bold). Generated from the linked records by
`python benchmarks/results_table.py --update {document}`.
"""


def _accuracy(runs: list[dict[str, Any]], name: str) -> str:
    """Mean ± std of one test accuracy over ``runs`` (the value alone for one run)."""
    scores = [with_upload_columns(r["test"], r["config"]["keys"]) for r in runs]
    if not all(name in s for s in scores):
        return "not measured"
    values = [s[name] for s in scores]
    return mean_std(values) if len(values) > 1 else f"{100 * values[0]:.2f}"


def row(spec: Row, relative_to: Path) -> str:
    """One setting's Markdown row from its records; links relative to ``relative_to``."""
    folders = sorted(p for p in RECORDS.glob(spec.runs) if p.is_dir())
    if not folders:
        raise SystemExit(f"{RECORDS / spec.runs}: no run folders")
    runs = [read_record(folder) for folder in folders]
    if len(seed_groups(runs)) != 1:
        raise SystemExit(f"{RECORDS / spec.runs}: runs that differ in more than their seed")
    bold = "**" if spec.images == "fresh_key" else ""
    no_tta = f"{bold}{_accuracy(runs, spec.images)}{bold}"
    seeds = ",".join(str(r["seed"]) for r in runs)
    link = Path(os.path.relpath(folders[0].parent, relative_to)).as_posix()
    name = f"{folders[0].parent.name}/{Path(spec.runs).name}"
    images = {"plain": "plain", "fresh_key": "fresh-key"}[spec.images]
    return (
        f"| {spec.label} | {images} | {no_tta} | {_accuracy(runs, spec.images + '_tta')} "
        f"| {seeds} | {runs[0]['config']['epochs']:g} | {machine_label(runs[0])} "
        f"| [{name}]({link}/) |"
    )


def table(relative_to: Path = ROOT, document: str = "README.md") -> str:
    """The whole block for ``document`` in ``relative_to``: the table, the published figure's
    row, and a note on how to read it."""
    rows = [row(spec, relative_to) for spec in ROWS]
    return "\n".join([HEADER, *rows, PUBLISHED, "", NOTE.format(document=document)])


def update(document: Path) -> None:
    """Rewrite the table between the document's results-table markers (which must be there)."""
    update_markdown(document, "results-table", table(document.resolve().parent, document.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="rewrite the table in this Markdown file")
    args = parser.parse_args()
    if args.update:
        update(args.update)
    else:
        print(table(), end="")


if __name__ == "__main__":
    main()
