"""SECURITY.md's privacy-utility chart: for each cipher and key mode, the best CIFAR-10 accuracy
we measured (x, mean over seeds, without TTA) against the best attack's SSIM (y), read from run
records and attack reports.

    python benchmarks/security/privacy_chart.py --reports benchmarks/reports \\
        --records benchmarks/records --out benchmarks/security/privacy.png [--update SECURITY.md]

Accuracy: records trained with that cipher (default settings) and key mode are grouped into
settings whose runs differ only in their seed (as ``keyless report --mean`` groups them); each
setting scores the mean over its seeds of its test accuracy without test-time augmentation
(TTA), on the images that mode serves: fresh-key ciphertexts for independent keys, common-key
ciphertexts for a common key. The setting with the highest mean is the point; its mean with TTA
is listed beside it where its records have one and the cipher commutes with moves (TTA flips
and shifts ciphertexts, which is not valid for the block ciphers; older records have a figure).
Attack: the highest mean SSIM of any attack in the report for that cipher and key mode. Prints
a Markdown table of the points, each with the runs and the attack it comes from; ``--update``
also writes that table between a document's ``<!-- privacy-table -->`` and
``<!-- /privacy-table -->`` lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from keyless._atomic import atomic_path
from keyless.cipher import Cipher, create_cipher
from keyless.runs import (
    TrainConfig,
    mean_std,
    read_record,
    seed_groups,
    update_markdown,
    with_upload_columns,
)

Point = tuple[str, str]  # (cipher, key mode)
SERVED = {"independent": "fresh_key", "common": "common_key"}


@dataclass(frozen=True)
class Accuracy:
    """One setting's test accuracy on the images its key mode serves, over its seeds."""

    mean: float  # %, without TTA
    std: float  # sample standard deviation in points (0 for one seed)
    cell: str  # "mean ± std" (the value alone for one seed), without TTA
    tta: str  # the same with TTA, or "" when the records have none
    seeds: str
    runs: str  # the run folders, as "parent/{a,b}" for several


def _default_cipher(cipher: Cipher) -> str | None:
    """The cipher's name when it has its default options (what the attacks ran on)."""
    return cipher.name if cipher == type(cipher)() else None


def _cell(values: list[float]) -> str:
    return mean_std(values) if len(values) > 1 else f"{100 * values[0]:.2f}"


def _runs(folders: list[Path]) -> str:
    if len(folders) == 1:
        return folders[0].as_posix()
    return f"{folders[0].parent.as_posix()}/{{{','.join(f.name for f in folders)}}}"


def best_accuracy(records: list[Path]) -> dict[Point, Accuracy]:
    """(cipher, keys) -> the setting with the highest mean accuracy over its seeds (no TTA)."""
    by_point: dict[Point, list[dict[str, Any]]] = {}
    for path in records:
        record = read_record(path)
        config = TrainConfig.from_dict(record["config"])
        name, keys = _default_cipher(config.cipher), config.keys
        if name is not None and keys in SERVED:
            by_point.setdefault((name, keys), []).append({**record, "path": path.parent})
    best: dict[Point, Accuracy] = {}
    for point, runs in by_point.items():
        served = SERVED[point[1]]
        for group in seed_groups(runs):
            scores = [with_upload_columns(r["test"], point[1]) for r in group]
            if not all(served in s for s in scores):
                continue
            values = [s[served] for s in scores]
            mean = 100 * statistics.fmean(values)
            if point not in best or mean > best[point].mean:
                moves = create_cipher(point[0]).commutes_with_moves  # else TTA is not valid
                tta = [s[f"{served}_tta"] for s in scores if moves and f"{served}_tta" in s]
                best[point] = Accuracy(
                    mean=mean,
                    std=100 * statistics.stdev(values) if len(values) > 1 else 0.0,
                    cell=_cell(values),
                    tta=_cell(tta) if len(tta) == len(values) else "",
                    seeds=",".join(str(r.get("seed")) for r in group),
                    runs=_runs([r["path"] for r in group]),
                )
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


def chart(accuracy: dict[Point, Accuracy], attack: dict[Point, tuple[float, str]],
          path: Path) -> list[Point]:  # fmt: skip
    """Plot every (cipher, key mode) that has both numbers; returns the points drawn."""
    points = sorted(set(accuracy) & set(attack))
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=100)
    above: tuple[float, float] | None = None  # the last point labelled above itself
    for cipher, keys in sorted(points, key=lambda p: accuracy[p].mean):
        x, y = accuracy[cipher, keys].mean, attack[cipher, keys][0]
        ax.errorbar(x, y, xerr=accuracy[cipher, keys].std, capsize=3,
                    marker="o" if keys == "independent" else "s",
                    color="C0" if keys == "independent" else "C3")  # fmt: skip
        crowded = above is not None and abs(x - above[0]) < 4 and abs(y - above[1]) < 0.1
        above = None if crowded else (x, y)  # a crowded point's label goes below it
        ax.annotate(f"{cipher.upper()} {keys}\n({attack[cipher, keys][1]})", (x, y),
                    textcoords="offset points", xytext=(5, -22 if crowded else 4),
                    fontsize=7)  # fmt: skip
    ax.set_xlabel("CIFAR-10 test accuracy on the images served, no TTA (%):\n"
                  "the best setting's mean over its seeds, bar: standard deviation")  # fmt: skip
    ax.set_ylabel("best attack's mean SSIM (higher leaks more)")
    ax.set_ylim(-0.05, 1.15)
    ax.set_title("Privacy against utility (circles: independent keys, squares: common)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return points


def table(accuracy: dict[Point, Accuracy], attack: dict[Point, tuple[float, str]],
          points: list[Point]) -> str:  # fmt: skip
    lines = ["| cipher | keys | accuracy %, no TTA | with TTA | seeds | from runs "
             "| best attack SSIM | attack |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for cipher, keys in points:
        a, (ssim, name) = accuracy[cipher, keys], attack[cipher, keys]
        lines.append(f"| {cipher.upper()} | {keys} | {a.cell} | {a.tta or 'none'} | {a.seeds} "
                     f"| {a.runs} | {ssim:.3f} | {name} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def update(document: Path, markdown: str) -> None:
    """Put ``markdown`` between the document's privacy-table markers (which must be there)."""
    update_markdown(document, "privacy-table", markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, required=True, help="folder of attack reports")
    parser.add_argument("--records", type=Path, nargs="+", required=True,
                        help="folders searched for record.json")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the chart (PNG)")
    parser.add_argument("--update", type=Path, help="also write the table into this document")
    args = parser.parse_args()
    accuracy = best_accuracy([p for f in args.records for p in sorted(f.rglob("record.json"))])
    # the privacy dial's reports (frontier-*) attack settings other than a cipher's defaults
    reports = [p for p in sorted(args.reports.rglob("report.json"))
               if not p.parent.name.startswith("frontier-")]  # fmt: skip
    attack = best_attack(reports)
    points = chart(accuracy, attack, args.out)
    markdown = table(accuracy, attack, points)
    if args.update:
        update(args.update, markdown)
    print(markdown, end="")


if __name__ == "__main__":
    main()
