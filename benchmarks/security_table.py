"""Render SECURITY.md's tables from ``keyless attack`` reports: one row per attack, independent
and common keys side by side, for one cipher.

    python benchmarks/security_table.py REPORTS/pe-independent REPORTS/pe-common
    python benchmarks/security_table.py --update SECURITY.md

``--update`` rewrites, in place, every table between a ``<!-- security-table INDEPENDENT COMMON
-->`` line and the next ``<!-- /security-table -->`` line, from the two report folders the
opening line names (relative to the document); the prose around them stays as written.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def _cell(row: dict | None) -> str:
    if row is None:
        return "not run | not run"
    ssim = f"{row['ssim_mean']:.3f} +/- {row['ssim_std']:.3f}"
    psnr = f"{row['psnr_mean']:.2f} +/- {row['psnr_std']:.2f}"
    return f"{ssim} | {psnr}"


def table(independent: dict, common: dict) -> str:
    """Markdown rows: attack, SSIM and PSNR under independent keys, then a common key."""
    by_mode = [{r["attack"]: r for r in report["rows"]} for report in (independent, common)]
    attacks = list(dict.fromkeys([*by_mode[0], *by_mode[1]]))
    lines = [
        "| attack | independent keys: SSIM | PSNR (dB) | common key: SSIM | PSNR (dB) | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for attack in attacks:
        rows = [rows.get(attack) for rows in by_mode]
        seconds = " / ".join(f"{r['seconds']:.0f}" if r else "-" for r in rows)
        lines.append(f"| {attack} | {_cell(rows[0])} | {_cell(rows[1])} | {seconds} |")
    notes = [f"{name}: {why}" for name, why in independent.get("skipped", {}).items()]
    space = independent.get("keyspace")
    if space:
        notes.insert(0, f"key space {space['bits']:,.0f} bits per image")
    return "\n".join(lines) + ("\n\n" + "; ".join(notes) + "." if notes else "") + "\n"


def _load(folders: list[Path]) -> list[dict]:
    return [json.loads((folder / "report.json").read_text()) for folder in folders]


MARKER = re.compile(r"<!-- security-table (\S+) (\S+) -->\n.*?<!-- /security-table -->", re.S)


def update(document: Path) -> int:
    """Regenerate every marked table of ``document``; returns how many were rewritten."""

    def render(match: re.Match) -> str:
        reports = _load([document.parent / name for name in match.groups()])
        return f"{match.group(0).splitlines()[0]}\n{table(*reports)}<!-- /security-table -->"

    text, count = MARKER.subn(render, document.read_text())
    document.write_text(text)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="*", help="independent, then common folder")
    parser.add_argument("--update", type=Path, help="rewrite the marked tables of this document")
    args = parser.parse_args()
    if args.update:
        print(f"{update(args.update)} tables rewritten in {args.update}")
    elif len(args.reports) == 2:
        print(table(*_load(args.reports)), end="")
    else:
        parser.error("give two report folders (independent, common) or --update DOCUMENT")


if __name__ == "__main__":
    main()
