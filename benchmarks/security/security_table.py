"""Render SECURITY.md's tables from ``keyless attack`` reports: one row per attack, independent
and common keys side by side, for one cipher.

    python benchmarks/security/security_table.py REPORTS/pe-independent REPORTS/pe-common
    python benchmarks/security/security_table.py --update SECURITY.md

``--update`` rewrites, in place, every table between a ``<!-- security-table INDEPENDENT COMMON
-->`` line and the next ``<!-- /security-table -->`` line, from the report folders the opening
line names (relative to the document); the prose around them stays as written. Each of the two
may be a comma-separated list of folders, merged in order: a later report's row for an attack
replaces an earlier one's (e.g. one attack measured again, or added, in a folder of its own).
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
        "| attack | independent keys: SSIM | PSNR (dB) | common key: SSIM | PSNR (dB) | seconds "
        "| attacker images |",
        "|---|---|---|---|---|---|---|",
    ]
    for attack in attacks:
        rows = [rows.get(attack) for rows in by_mode]
        seconds = " / ".join(f"{r['seconds']:.0f}" if r else "-" for r in rows)
        images = " / ".join(f"{r['attacker_images']:,}" if r and "attacker_images" in r else "-"
                            for r in rows)  # fmt: skip
        lines.append(f"| {attack} | {_cell(rows[0])} | {_cell(rows[1])} | {seconds} | {images} |")
    notes = [f"{name}: {why}" for name, why in independent.get("skipped", {}).items()]
    space = independent.get("keyspace")
    if space:
        notes.insert(0, f"key space {space['bits']:,.0f} bits per image")
    return "\n".join(lines) + ("\n\n" + "; ".join(notes) + "." if notes else "") + "\n"


CIPHERTEXT = "encrypted image itself"


def merged(folders: list[Path]) -> dict:
    """One report from several of the same cipher and key mode, in order: each row keeps the
    attacker images of its report; a later row for an attack replaces an earlier one."""
    reports = [json.loads((folder / "report.json").read_text()) for folder in folders]
    kinds = {(r["cipher"], r["keys"], r["victims"], r["seed"]) for r in reports}
    if len(kinds) > 1:
        raise SystemExit(f"{', '.join(map(str, folders))}: reports of different settings {kinds}")
    rows: dict[str, dict] = {}
    result = {**reports[0], "skipped": {}}
    for report in reports:
        for row in report["rows"]:
            if row["attack"] == CIPHERTEXT and CIPHERTEXT in rows:
                continue  # the same victims' ciphertexts in every report: no attack, no attacker
            attacker = {"attacker_images": report["attacker_images"]}
            rows[row["attack"]] = {**row, **({} if row["attack"] == CIPHERTEXT else attacker)}
        result.update({k: v for k, v in report.items() if k == "keyspace"})
        result["skipped"].update(report.get("skipped", {}))
    result["skipped"] = {k: v for k, v in result["skipped"].items() if k not in rows}
    return {**result, "rows": list(rows.values())}


def _load(groups: list[str | Path], base: Path = Path()) -> list[dict]:
    """A merged report per group (a folder, or comma-separated folders, under ``base``)."""
    return [merged([base / name for name in str(group).split(",")]) for group in groups]


MARKER = re.compile(r"<!-- security-table (\S+) (\S+) -->\n.*?<!-- /security-table -->", re.S)


def update(document: Path) -> int:
    """Regenerate every marked table of ``document``; returns how many were rewritten."""

    def render(match: re.Match) -> str:
        reports = _load(list(match.groups()), document.parent)
        return f"{match.group(0).splitlines()[0]}\n{table(*reports)}<!-- /security-table -->"

    text, count = MARKER.subn(render, document.read_text())
    document.write_text(text)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", help="independent, then common folder(s)")
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
