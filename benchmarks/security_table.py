"""Render SECURITY.md's table from ``keyless attack`` reports: one row per attack, independent
and common keys side by side, for one cipher.

    python benchmarks/security_table.py REPORTS/pe-independent REPORTS/pe-common
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("independent", type=Path, help="report folder, independent keys")
    parser.add_argument("common", type=Path, help="report folder, common key")
    args = parser.parse_args()
    reports = [json.loads((p / "report.json").read_text()) for p in (args.independent, args.common)]
    print(table(*reports), end="")


if __name__ == "__main__":
    main()
