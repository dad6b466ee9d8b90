"""SECURITY.md's privacy-utility chart: for each cipher and key mode, the best CIFAR-10 accuracy
we measured (x) against the best attack's SSIM (y), read from run records and attack reports.

    python benchmarks/privacy_chart.py --reports benchmarks/reports \\
        --records results benchmarks/records --out benchmarks/privacy.png [--update SECURITY.md]

Accuracy: the highest test accuracy of any record trained with that cipher (default settings)
and key mode, on the images that mode serves: fresh-key ciphertexts for independent keys,
common-key ciphertexts for a common key (with TTA where the record has it). Attack: the highest
mean SSIM of any attack in the report for that cipher and key mode. Prints a Markdown table of
the points, each with the run and the attack it comes from; ``--update`` also writes that table
between a document's ``<!-- privacy-table -->`` and ``<!-- /privacy-table -->`` lines.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from keyless._atomic import atomic_path
from keyless.cipher import create_cipher

Point = tuple[str, str]  # (cipher, key mode)
SERVED = {"independent": "fresh_key", "common": "common_key"}


def _default_cipher(settings: dict[str, Any]) -> str | None:
    """The cipher's name when ``settings`` are its defaults (what the attacks ran on)."""
    name = settings.get("name", "pe")
    return name if create_cipher(**settings) == create_cipher(name) else None


def best_accuracy(records: list[Path]) -> dict[Point, tuple[float, str]]:
    """(cipher, keys) -> (best accuracy in %, the run folder it comes from)."""
    best: dict[Point, tuple[float, str]] = {}
    for path in records:
        record = json.loads(path.read_text())
        config, test = record.get("config", {}), record.get("test", {})
        name, keys = _default_cipher(config.get("cipher") or {}), config.get("keys")
        if name is None or keys not in SERVED:
            continue
        served = SERVED[keys]
        score = test.get(f"{served}_tta", test.get(served))
        if score is not None and 100 * score > best.get((name, keys), (-1.0, ""))[0]:
            best[name, keys] = (100 * score, str(path.parent))
    return best


def best_attack(reports: list[Path]) -> dict[Point, tuple[float, str]]:
    """(cipher, keys) -> (best mean SSIM, the attack that reached it)."""
    best: dict[Point, tuple[float, str]] = {}
    for path in reports:
        report = json.loads(path.read_text())
        for row in report["rows"]:
            key = (report["cipher"], report["keys"])
            if (
                row["attack"] != "encrypted image itself"
                and row["ssim_mean"] > best.get(key, (-2.0, ""))[0]
            ):
                best[key] = (row["ssim_mean"], row["attack"])
    return best


def chart(accuracy: dict[Point, tuple[float, str]], attack: dict[Point, tuple[float, str]],
          path: Path) -> list[Point]:  # fmt: skip
    """Plot every (cipher, key mode) that has both numbers; returns the points drawn."""
    points = sorted(set(accuracy) & set(attack))
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=100)
    above: tuple[float, float] | None = None  # the last point labelled above itself
    for cipher, keys in sorted(points, key=lambda p: accuracy[p][0]):
        x, y = accuracy[cipher, keys][0], attack[cipher, keys][0]
        ax.scatter(x, y, marker="o" if keys == "independent" else "s",
                   color="C0" if keys == "independent" else "C3")  # fmt: skip
        crowded = above is not None and abs(x - above[0]) < 4 and abs(y - above[1]) < 0.1
        above = None if crowded else (x, y)  # a crowded point's label goes below it
        ax.annotate(f"{cipher.upper()} {keys}\n({attack[cipher, keys][1]})", (x, y),
                    textcoords="offset points", xytext=(5, -22 if crowded else 4),
                    fontsize=7)  # fmt: skip
    ax.set_xlabel("best CIFAR-10 test accuracy on the images served (%)")
    ax.set_ylabel("best attack's mean SSIM (higher leaks more)")
    ax.set_ylim(-0.05, 1.15)
    ax.set_title("Privacy against utility (circles: independent keys, squares: common)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return points


def table(accuracy: dict[Point, tuple[float, str]], attack: dict[Point, tuple[float, str]],
          points: list[Point]) -> str:  # fmt: skip
    lines = ["| cipher | keys | accuracy % | from run | best attack SSIM | attack |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for cipher, keys in points:
        (acc, run), (ssim, name) = accuracy[cipher, keys], attack[cipher, keys]
        lines.append(f"| {cipher.upper()} | {keys} | {acc:.2f} | {run} | {ssim:.3f} | {name} |")
    return "\n".join(lines) + "\n"


MARKER = re.compile(r"(<!-- privacy-table -->\n).*?(<!-- /privacy-table -->)", re.S)


def update(document: Path, markdown: str) -> None:
    """Put ``markdown`` between the document's privacy-table markers (which must be there)."""
    text, count = MARKER.subn(lambda m: m.group(1) + markdown + m.group(2), document.read_text())
    if count != 1:
        raise SystemExit(f"{document}: needs one privacy-table marker pair")
    document.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, required=True, help="folder of attack reports")
    parser.add_argument("--records", type=Path, nargs="+", required=True,
                        help="folders searched for record.json")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the chart (PNG)")
    parser.add_argument("--update", type=Path, help="also write the table into this document")
    args = parser.parse_args()
    accuracy = best_accuracy([p for f in args.records for p in sorted(f.rglob("record.json"))])
    attack = best_attack(sorted(args.reports.rglob("report.json")))
    points = chart(accuracy, attack, args.out)
    markdown = table(accuracy, attack, points)
    if args.update:
        update(args.update, markdown)
    print(markdown, end="")


if __name__ == "__main__":
    main()
