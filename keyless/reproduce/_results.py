"""RESULTS.md sections and charts (bars; lines for the budget table), from the run records of
a reproduction (never by hand)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from keyless._atomic import atomic_path
from keyless.reproduce._tables import Row

_TEST_SETS = ("plain", "fresh_key", "common_key")
CLOSE_POINTS = 2.0  # "close" / "as well as", in accuracy points, for the access claims


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _score(row: Row, records: dict[str, dict[str, Any]]) -> float | None:
    record = records.get(row.name)
    return record["test"].get(row.metric) if record else None


def results_table(rows: list[Row], records: dict[str, dict[str, Any]]) -> str:
    """One line per row: accuracy on every test set, the row's judged metric, the paper's."""
    lines = [
        "| row | setting | plain | fresh key | common key | judged on | ours | paper | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        record = records.get(row.name)
        test = record["test"] if record else {}
        seconds = f"{record['train_seconds']:.0f}" if record else "not run yet"
        paper = "" if row.paper is None else f"{row.paper:.2f}"
        cells = " | ".join(_pct(test.get(k)) for k in _TEST_SETS)
        lines.append(
            f"| {row.name} | {row.label} | {cells} | {row.metric.replace('_', ' ')} "
            f"| {_pct(test.get(row.metric))} | {paper} | {seconds} |"
        )
    return "\n".join(lines) + "\n"


def ordering_differences(rows: list[Row], records: dict[str, dict[str, Any]]) -> list[str]:
    """A sentence for every pair of finished rows whose order differs from the paper's."""
    done = [(r, _score(r, records)) for r in rows if r.paper is not None]
    done = [(r, s) for r, s in done if s is not None]
    sentences = []
    for (a, sa), (b, sb) in combinations(done, 2):
        if (a.paper - b.paper) * (sa - sb) < 0:
            hi, lo, shi, slo = (a, b, sa, sb) if a.paper > b.paper else (b, a, sb, sa)
            sentences.append(
                f"- The paper ranks **{hi.name}** ({hi.paper:.2f}) above **{lo.name}** "
                f"({lo.paper:.2f}); here it is below ({100 * shi:.2f} vs {100 * slo:.2f})."
            )
    return sentences


def access_claims(records: dict[str, dict[str, Any]]) -> list[str]:
    """The paper's three claims, judged on every model with the needed rows finished; (a) and
    (b) also for keyless's key-invariant stem where its row is finished."""
    lines = []
    models = sorted({name.split("-")[0] for name in records})
    for model in models:
        plain = records.get(f"{model}-plain")
        for row, who in (
            ("independent", model),
            ("independent-invariant", f"{model} + invariant stem"),
        ):
            independent = records.get(f"{model}-{row}")
            if plain and independent:
                lines += _claims_ab(who, plain, independent)
        independent = records.get(f"{model}-independent")
        noaug = records.get(f"{model}-independent-noaug")
        if independent and noaug:
            fresh, without = independent["test"]["fresh_key"], noaug["test"]["fresh_key"]
            gain = 100 * (fresh - without)
            lines.append(
                f"- **{model} (c)** augmentation in the encrypted domain works: "
                f"{100 * fresh:.2f} % with vs {100 * without:.2f} % without, "
                f"{gain:+.2f} points: {'holds' if gain > 0 else 'does not hold'}."
            )
    return lines


def _claims_ab(who: str, plain: dict[str, Any], independent: dict[str, Any]) -> list[str]:
    """Claims (a) and (b) for one independent-key run against the plain-trained run."""
    base, fresh = plain["test"]["plain"], independent["test"]["fresh_key"]
    on_plain = independent["test"]["plain"]
    gap, plain_gap = 100 * (base - fresh), 100 * (on_plain - fresh)
    return [
        f"- **{who} (a)** independent keys keep accuracy close to plain training: "
        f"{100 * fresh:.2f} % (fresh-key test) vs {100 * base:.2f} %, a gap of {gap:.2f} "
        f"points: {'holds' if gap <= CLOSE_POINTS else 'does not hold'} "
        f"(close = within {CLOSE_POINTS:g} points).",
        f"- **{who} (b)** plain test images are classified as well as encrypted ones: "
        f"{100 * on_plain:.2f} % plain vs {100 * fresh:.2f} % fresh-key "
        f"({plain_gap:+.2f} points): "
        f"{'holds' if abs(plain_gap) <= CLOSE_POINTS else 'does not hold'}.",
    ]


def _save(fig: plt.Figure, ax: plt.Axes, title: str, path: Path, legend_size: int) -> None:
    """Title and legend, then write the PNG atomically and free the figure."""
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def bar_chart(rows: list[Row], records: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Grouped bars per row: ours on the row's judged test set, and the paper's figure."""
    names = [r.name for r in rows]
    ours = [100 * (_score(r, records) or 0.0) for r in rows]
    paper = [r.paper or 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows)), 4.0), dpi=100)
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], ours, 0.4, label="keyless (this run)")
    if any(paper):
        ax.bar([i + 0.2 for i in x], paper, 0.4, label="paper")
    ax.set_xticks(list(x), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    _save(fig, ax, title, path, legend_size=8)


def _tta(records: dict[str, dict[str, Any]], name: str, test_set: str) -> float | None:
    record = records.get(name)
    return record["test"].get(f"{test_set}_tta") if record else None


def _curves(rows: list[Row]) -> tuple[list[str], list[int]]:
    """The budget table's curves and epoch budgets, in row order (rows are ``curve-eN``)."""
    curves = list(dict.fromkeys(r.name.rsplit("-e", 1)[0] for r in rows))
    return curves, sorted({int(r.config.epochs) for r in rows})


def budget_table(rows: list[Row], records: dict[str, dict[str, Any]]) -> str:
    """Curves x budgets: fresh-key / plain test accuracy (TTA) and the gap to plain training."""
    curves, budgets = _curves(rows)
    lines = [
        "| curve | " + " | ".join(f"{e} epochs" for e in budgets) + " |",
        "|---" * (len(budgets) + 1) + "|",
    ]
    for curve in curves:
        cells = []
        for epochs in budgets:
            name, base = f"{curve}-e{epochs}", _tta(records, f"plain-e{epochs}", "plain")
            fresh, plain = _tta(records, name, "fresh_key"), _tta(records, name, "plain")
            if plain is None:
                cells.append("not run yet")
            elif curve == "plain":
                cells.append(f"{_pct(plain)}")
            else:
                gap = f" (gap {100 * (base - fresh):.2f})" if base is not None else ""
                cells.append(f"{_pct(fresh)} / {_pct(plain)}{gap}")
        lines.append(f"| {curve} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def budget_claims(rows: list[Row], records: dict[str, dict[str, Any]]) -> list[str]:
    """Claims (a) and (b) of the paper at every finished budget, per independent-key curve."""
    curves, budgets = _curves(rows)
    lines = []
    for curve in (c for c in curves if c != "plain"):
        a, b = [], []
        for epochs in budgets:
            base = _tta(records, f"plain-e{epochs}", "plain")
            fresh = _tta(records, f"{curve}-e{epochs}", "fresh_key")
            plain = _tta(records, f"{curve}-e{epochs}", "plain")
            if fresh is None:
                continue
            if base is not None:
                gap = 100 * (base - fresh)
                a.append(f"{epochs} ep: gap {gap:.2f} ({'holds' if gap <= CLOSE_POINTS else 'no'})")
            diff = 100 * (plain - fresh)
            b.append(f"{epochs} ep: {diff:+.2f} ({'holds' if abs(diff) <= CLOSE_POINTS else 'no'})")
        if a:
            lines.append(f"- **{curve} (a)** fresh-key accuracy within {CLOSE_POINTS:g} points of "
                         f"plain training (TTA): {'; '.join(a)}.")  # fmt: skip
        if b:
            lines.append(f"- **{curve} (b)** plain test images as well as fresh-key ones: "
                         f"{'; '.join(b)}.")  # fmt: skip
    return lines


def budget_chart(
    rows: list[Row], records: dict[str, dict[str, Any]], path: Path, title: str
) -> None:
    """Accuracy (TTA) against epochs: a colour per curve; fresh-key solid, plain test dashed."""
    curves, budgets = _curves(rows)
    fig, ax = plt.subplots(figsize=(6.5, 4.0), dpi=100)
    for colour, curve in enumerate(curves):
        for test_set, style in (("fresh_key", "-"), ("plain", "--")):
            if curve == "plain" and test_set == "fresh_key":
                continue
            points = [(e, _tta(records, f"{curve}-e{e}", test_set)) for e in budgets]
            points = [(e, 100 * v) for e, v in points if v is not None]
            if points:
                label = f"{curve}, {'plain' if test_set == 'plain' else 'fresh-key'} test"
                ax.plot(*zip(*points, strict=True), style, marker="o", label=label,
                        color=f"C{colour}")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(e) for e in budgets])
    ax.set_xlabel("training epochs")
    ax.set_ylabel("test accuracy with TTA (%)")
    _save(fig, ax, title, path, legend_size=7)


def diagnostic_table(rows: list[Row], records: dict[str, dict[str, Any]]) -> str:
    """Each input on plain test images (TTA and not) and its cost against plain images."""
    base = _tta(records, "plain", "plain")
    lines = ["| input | setting | plain test | TTA | cost vs plain (TTA points) | train s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        record = records.get(row.name)
        if record is None:
            lines.append(f"| {row.name} | {row.label} | not run yet | | | |")
            continue
        tta = record["test"]["plain_tta"]
        cost = f"{100 * (base - tta):.2f}" if base is not None else ""
        lines.append(f"| {row.name} | {row.label} | {_pct(record['test']['plain'])} "
                     f"| {_pct(tta)} | {cost} | {record['train_seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"
