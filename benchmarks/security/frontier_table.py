"""SECURITY.md's "choose your setting" table, the privacy dial's chart and its picture grid, from
the runs and attack reports of ``privacy_frontier.sh``.

    python benchmarks/security/frontier_table.py --data ../shared/data/cifar10/cifar10.npz \\
        [--update SECURITY.md BENCHMARKS.md]

Accuracy: each setting's runs (``RECORDS/NAME-sSEED``), mean +/- sample std over the seeds, on
fresh-key and on plain test images, without test-time augmentation (TTA; it is not valid for the
settings that move blocks, so no setting gets it). Attack: the highest mean SSIM of any attack
in ``REPORTS/frontier-NAME`` (the same 1,000 victims, attacker data and budget for every
setting; for LE, ELE and EtC also their earlier invariant-attack report, see
:func:`report_folders`), with its PSNR; the jigsaw attack's share of correctly placed blocks
where it ran. A setting is on the Pareto frontier when no other one has both a higher fresh-key
accuracy and a lower best-attack SSIM. The grid shows, for three test images, the plain image,
the ciphertext and what every key leaves (the cipher's invariant): what a ciphertext-only
attacker starts from.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from keyless._atomic import atomic_path
from keyless.cipher import Cipher
from keyless.data import load_npz
from keyless.keys import SeedSource
from keyless.runs import TrainConfig, read_record, update_markdown
from keyless.visualize import image_grid

RECORDS = Path("benchmarks/records/privacy-frontier-cpu-amd-2026-12")
REPORTS = Path("benchmarks/reports")
OUT = Path("benchmarks/security")
GOAL_SSIM, GOAL_ACCURACY = 0.30, 80.0
BLOCK_CIPHERS = ("le", "ele", "etc")
# another model on a row's cipher: it shares that row's attack reports (an attack sees the
# cipher, not the model) and is told apart from it by a note
SAME_CIPHER = {"pe-raw": ("pe", "the paper's model"), "pe-scramble8-wide": ("pe-scramble8", "wide")}


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    model: str  # "fastnet 32/64/128, invariant stem"
    cipher: Cipher
    fresh: list[float]  # % per seed, no TTA
    plain: list[float]
    seeds: list[int]
    epochs: float
    ssim: float  # best attack's mean SSIM
    psnr: float
    attack: str
    placed: float | None  # jigsaw: share of victim blocks placed where they belong

    @property
    def display(self) -> str:
        """The label, told apart from another model on the same cipher."""
        return (
            f"{self.label} ({SAME_CIPHER[self.name][1]})"
            if self.name in SAME_CIPHER
            else self.label
        )


def _mean(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _label(cipher: Cipher) -> str:
    """ "PE + scramble, M = 8", "PE, noise sigma = 16", "EtC": the cipher and what it changes."""
    name, settings, defaults = cipher.name, cipher.settings(), type(cipher)().settings()
    words = {"pe": "PE", "pe-scramble": "PE + scramble", "le": "LE", "ele": "ELE", "etc": "EtC"}
    changed = {k: v for k, v in settings.items() if k != "name" and defaults.get(k) != v}
    if name == "pe-scramble":
        changed["block_size"] = settings["block_size"]
    options = [
        f"M = {v}" if k == "block_size" else f"noise sigma = {v:g}" if k == "noise" else f"{k} {v}"
        for k, v in changed.items()
    ]
    return ", ".join([words.get(name, name), *options])


def _model(config: dict) -> str:
    """ "fastnet 32/64/128": the model and its widths where the run set them."""
    widths = config["model_kwargs"].get("widths")
    return config["model"] + (f" {'/'.join(map(str, widths))}" if widths else "")


def read_settings(records: Path, reports: Path) -> list[Setting]:
    """Every setting with at least one finished run and a report."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(records.glob("*-s[0-9]*/record.json")):
        name = re.sub(r"-s\d+$", "", path.parent.name)
        runs.setdefault(name, []).append(read_record(path))
    settings = []
    for name, group in runs.items():
        found = [f for f in report_folders(reports, name) if (f / "report.json").exists()]
        if not found:
            continue
        attacks = [
            row
            for folder in found
            for row in json.loads((folder / "report.json").read_text())["rows"]
            if row["attack"] != "encrypted image itself"
        ]
        best = max(attacks, key=lambda r: r["ssim_mean"])
        config = group[0]["config"]
        cipher = TrainConfig.from_dict(config).cipher
        settings.append(
            Setting(
                name=name,
                label=_label(cipher),
                model=f"{_model(config)}, {config['stem']} stem",
                cipher=cipher,
                fresh=[100 * r["test"]["fresh_key"] for r in group],
                plain=[100 * r["test"]["plain"] for r in group],
                seeds=sorted(r["seed"] for r in group),
                epochs=config["epochs"],
                ssim=best["ssim_mean"],
                psnr=best["psnr_mean"],
                attack=best["attack"],
                placed=next((r["blocks_placed"] for r in attacks if "blocks_placed" in r), None),
            )
        )
    return settings


def report_folders(reports: Path, name: str) -> list[Path]:
    """A setting's attack reports: its own, and for the block ciphers under independent keys
    also the invariant attack's report behind SECURITY.md's tables (same victims, seed, budget
    and attacker data, made when those ciphers declared no invariant: it learned from the
    ciphertext itself). A row in :data:`SAME_CIPHER` reads its cipher's row's reports."""
    own = [reports / f"frontier-{SAME_CIPHER.get(name, (name,))[0]}"]
    return own + ([reports / f"{name}-independent-invariant"] if name in BLOCK_CIPHERS else [])


def pareto(settings: list[Setting]) -> set[str]:
    """Names of the settings no other setting beats on both accuracy and SSIM."""
    return {
        s.name
        for s in settings
        if not any(
            o.ssim <= s.ssim
            and statistics.mean(o.fresh) >= statistics.mean(s.fresh)
            and (o.ssim, statistics.mean(o.fresh)) != (s.ssim, statistics.mean(s.fresh))
            for o in settings
        )
    }


def reports_cell(name: str) -> str:
    folders = [f for f in report_folders(REPORTS, name) if (f / "report.md").exists()]
    return ", ".join(f"[{f.name}]({f.as_posix()}/report.md)" for f in folders)


def table(settings: list[Setting], machine: str) -> str:
    front = pareto(settings)
    lines = [
        "| setting | model | fresh-key accuracy % | plain accuracy % | best attack: SSIM "
        "| PSNR (dB) | attack | blocks placed | frontier | runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(settings, key=lambda s: -statistics.mean(s.fresh)):
        placed = f"{100 * s.placed:.1f} %" if s.placed is not None else ""
        lines.append(
            f"| {s.label} | {s.model} | {_mean(s.fresh)} | {_mean(s.plain)} | {s.ssim:.3f} "
            f"| {s.psnr:.2f} "
            f"| {s.attack} | {placed} | {'yes' if s.name in front else ''} "
            f"| [{s.name}-s{{{','.join(map(str, s.seeds))}}}]({RECORDS.as_posix()}), "
            f"{reports_cell(s.name)} |"
        )
    epochs = {s.epochs for s in settings}
    lines.append(
        f"\nAccuracy: mean ± sample std over seeds {', '.join(map(str, settings[0].seeds))}, "
        f"{'/'.join(f'{e:g}' for e in sorted(epochs))} epochs, no TTA; {machine}."
    )
    return "\n".join(lines)


def chart(settings: list[Setting], out: Path) -> None:
    front_names = pareto(settings)
    front = sorted((s for s in settings if s.name in front_names),
                   key=lambda s: statistics.mean(s.fresh))  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.fill_between([GOAL_ACCURACY, 100], 0, GOAL_SSIM, color="#e8f4e8", zorder=0)
    ax.text(GOAL_ACCURACY + 0.5, 0.01, "goal: SSIM <= 0.30\nand accuracy >= 80 %", fontsize=8)
    ax.plot([statistics.mean(s.fresh) for s in front], [s.ssim for s in front], "-", color="#c33")
    placed: list[tuple[float, float, int]] = []  # labelled points and their label's offset
    for s in sorted(settings, key=lambda s: (statistics.mean(s.fresh), s.ssim)):
        x = statistics.mean(s.fresh)
        ax.errorbar(x, s.ssim, xerr=statistics.stdev(s.fresh) if len(s.fresh) > 1 else 0,
                    fmt="o", color="#c33" if s.name in front_names else "#555")  # fmt: skip
        # a label goes above its point, or below, or further out, clear of its neighbours' labels
        taken = {dy for px, py, dy in placed if x - px < 12 and abs(s.ssim - py) < 0.04}
        dy = next(d for d in (5, -11, 16, -22, 27) if d not in taken)
        right = x > 78  # near the right edge: the label goes to the left of its point
        ax.annotate(s.display, (x, s.ssim), textcoords="offset points", fontsize=7,
                    xytext=(-4 if right else 4, dy), ha="right" if right else "left")  # fmt: skip
        placed.append((x, s.ssim, dy))
    ax.set_xlim(10, 100)
    ax.set_ylim(0, max(s.ssim for s in settings) + 0.08)
    ax.set_xlabel("CIFAR-10 accuracy on fresh-key test images, % (mean of 2 seeds, no TTA)")
    ax.set_ylabel("best attack's SSIM (lower hides more)")
    ax.set_title("The privacy dial at one CPU budget (red: the Pareto frontier)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def grid(settings: list[Setting], data: Path, out: Path, victims: int = 3) -> None:
    """Per cipher setting, for the first test images: the plain image, the ciphertext and the
    invariant."""
    images = load_npz(data)["test"].images[:victims]
    rows, header, drawn = [], [], []
    for s in sorted(settings, key=lambda s: -statistics.mean(s.fresh)):
        cipher = s.cipher
        if cipher in drawn:  # another model on the same cipher: the same picture
            continue
        drawn.append(cipher)
        encrypted = cipher.encrypt_fresh(images, SeedSource(0))[0]
        invariant = cipher.key_invariant(encrypted)
        row = [t.numpy() for i in range(victims) for t in (images[i], encrypted[i], invariant[i])]
        rows.append(row)
        header.append(s.label)
    columns = [f"{t} {i + 1}" for i in range(victims) for t in ("plain", "cipher", "invariant")]
    picture = image_grid(rows, columns, [[h] + [""] * (len(columns) - 1) for h in header], 2)
    with atomic_path(out) as tmp:
        picture.save(tmp, format="PNG")


def update(document: Path, text: str) -> None:
    """Put the table ``text`` between the document's frontier-table markers."""
    update_markdown(document, "frontier-table", text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10 npz, for the grid")
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--reports", type=Path, default=REPORTS)
    parser.add_argument(
        "--update", type=Path, nargs="*", default=[], help="Markdown files with the markers"
    )
    args = parser.parse_args()
    settings = read_settings(args.records, args.reports)
    if not settings:
        raise SystemExit(f"no finished settings under {args.records} with reports")
    first = read_record(next(args.records.glob("*/record.json")))
    machine = f"{first['machine']['cpu']}, {first['machine']['cores']} cores, {first['precision']}"
    text = table(settings, machine)
    print(text)
    chart(settings, OUT / "frontier.png")
    grid(settings, args.data, OUT / "frontier_grid.png")
    for document in args.update:
        update(document, text)


if __name__ == "__main__":
    main()
