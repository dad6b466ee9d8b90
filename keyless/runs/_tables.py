"""Markdown tables generated from run records (never typed): one row per run, or per setting
as mean ± standard deviation over its seeds; and the marker pairs that keep them in the docs."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from keyless.runs._config import TrainConfig
from keyless.runs._record import read_record


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def cipher_label(config: TrainConfig) -> str:
    """A run's cipher and the options it changed from that cipher's defaults (none for plain)."""
    if config.keys == "plain":
        return ""
    options = config.cipher.settings()
    name = options.pop("name")
    defaults = type(config.cipher)().settings()
    return " ".join([name, *(f"{k}={v}" for k, v in options.items() if defaults.get(k) != v)])


def _adapt_label(adapt: str) -> str:
    return "" if adapt == "none" else adapt


def _model_label(config: TrainConfig) -> str:
    kwargs = config.model_kwargs
    label = [config.model]
    if kwargs.get("widths"):
        label.append("/".join(map(str, kwargs["widths"])))
    if kwargs.get("residual"):
        depth = kwargs.get("residual_depth", 2)
        label.append("residual" + ("" if depth == 2 else f" depth {depth}"))
    if kwargs.get("whiten_kernel", 2) != 2:
        label.append(f"whiten {kwargs['whiten_kernel']}x{kwargs['whiten_kernel']}")
    return " ".join(label)


def machine_label(record: dict[str, Any]) -> str:
    """The machine and the precision it ran in (bf16 autocast or fp32)."""
    m = record["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cores']} cores"
    return f"{where}, {record['precision']}" if record.get("precision") else where


def _commit(record: dict[str, Any]) -> str:
    return (record.get("git_commit") or "")[:7]


def with_upload_columns(test: dict[str, float], keys: str) -> dict[str, float]:
    """A record's test accuracies; for a run trained on an upload, its re-keyed test split (the
    owner's test ciphertexts under keys no image had before) fills the fresh-key cells and, for
    a common-key upload (``keys``), the split as the owner encrypted it the common-key cells."""
    moved = {}
    for name, value in test.items():
        if name.startswith("upload_rekeyed"):
            moved[name.replace("upload_rekeyed", "fresh_key")] = value
        elif name.startswith("upload") and keys == "common":
            moved[name.replace("upload", "common_key")] = value
    return {**moved, **test}


def report_table(records: list[dict[str, Any]]) -> str:
    """A Markdown table of runs: setting, accuracies on each test set (plain / fresh key /
    common key, without and with TTA; an upload's re-keyed test split as the fresh-key one),
    training time, machine, commit and the command."""
    header = (
        "| run | model | keys | cipher | rekey | stem | adapt | epochs | plain, no TTA "
        "| fresh key, no TTA | common key, no TTA | plain, TTA | fresh key, TTA "
        "| common key, TTA | train s | machine "
        "| commit | command |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in records:
        c = TrainConfig.from_dict(r["config"])
        t = with_upload_columns(r["test"], c.keys)
        command = f"`{r['command']}`" if r.get("command") else ""
        rows.append(
            f"| {r.get('name', '')} | {_model_label(c)} | {c.keys} | {cipher_label(c)} "
            f"| {'yes' if c.rekey else ''} "
            f"| {c.stem} | {_adapt_label(c.adapt)} | {c.epochs:g} "
            f"| {_percent(t.get('plain'))} | {_percent(t.get('fresh_key'))} "
            f"| {_percent(t.get('common_key'))} | {_percent(t.get('plain_tta'))} "
            f"| {_percent(t.get('fresh_key_tta'))} | {_percent(t.get('common_key_tta'))} "
            f"| {r['train_seconds']:.0f} | {machine_label(r)} | {_commit(r)} | {command} |"
        )
    return header + "\n".join(rows) + "\n"


def mean_std(values: list[float]) -> str:
    """Fractions as "mean ± sample standard deviation" in % (± 0.00 for a single value)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def seed_groups(
    records: list[dict[str, Any]], pool_commits: bool = False
) -> list[list[dict[str, Any]]]:
    """Runs that differ only in their seed, grouped in order of first appearance: same config,
    data, commit and machine (``pool_commits``: any commit)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        config = {k: v for k, v in r["config"].items() if k != "seed"}
        commit = "" if pool_commits else _commit(r)
        data = r.get("data_source", r.get("data"))  # the data's hash, in records that have it
        key = json.dumps([config, data, commit, machine_label(r)], sort_keys=True)
        groups.setdefault(key, []).append(r)
    return list(groups.values())


MEAN_NOTE = (
    "Test accuracy in %, mean ± sample standard deviation over the seeds listed. TTA: test-time "
    "augmentation (each image also scored mirrored and shifted by a pixel); no TTA: one pass."
)


def mean_table(records: list[dict[str, Any]], pool_commits: bool = False) -> str:
    """Runs that differ only in their seed, grouped (``seed_groups``): the setting, mean ±
    standard deviation of each test accuracy without and with TTA, and the seeds; then
    :data:`MEAN_NOTE`. ``pool_commits`` also groups runs of different commits (for when the
    training code did not change between them); the commit cell then lists each one."""
    sets = ("plain", "fresh_key", "common_key", "plain_tta", "fresh_key_tta", "common_key_tta")
    lines = [
        "| model | keys | cipher | stem | adapt | rekey | epochs | seeds | plain, no TTA "
        "| fresh key, no TTA | common key, no TTA | plain, TTA | fresh key, TTA "
        "| common key, TTA | machine | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for runs in seed_groups(records, pool_commits):
        c = TrainConfig.from_dict(runs[0]["config"])
        scores = [with_upload_columns(r["test"], r["config"]["keys"]) for r in runs]
        cells = [
            mean_std([t[s] for t in scores]) if all(s in t for t in scores) else "" for s in sets
        ]
        seeds = ",".join(str(r.get("seed")) for r in runs)
        commits = ",".join(dict.fromkeys(_commit(r) for r in runs))
        lines.append(
            f"| {_model_label(c)} | {c.keys} | {cipher_label(c)} | {c.stem} "
            f"| {_adapt_label(c.adapt)} | {'yes' if c.rekey else ''} "
            f"| {c.epochs:g} | {seeds} | {' | '.join(cells)} | {machine_label(runs[0])} "
            f"| {commits} |"
        )
    lines += ["", MEAN_NOTE]
    return "\n".join(lines) + "\n"


def run_table(runs: Iterable[Path | str], mean: bool = False, pool_commits: bool = False) -> str:
    """The Markdown table of ``runs`` (run folders or record files, each named by its folder):
    one row per run (:func:`report_table`), or with ``mean`` one per setting (:func:`mean_table`,
    which ``pool_commits`` is passed to)."""
    records = []
    for run in map(Path, runs):
        records.append({**read_record(run), "name": (run if run.is_dir() else run.parent).name})
    return mean_table(records, pool_commits) if mean else report_table(records)


def update_markdown(document: Path, name: str, markdown: str) -> None:
    """Put ``markdown`` (ending in a newline) between the document's ``<!-- NAME -->`` and
    ``<!-- /NAME -->`` lines: how generated tables are kept in the docs."""
    start, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text, count = pattern.subn(lambda _: start + markdown + end, document.read_text())
    if count != 1:
        raise SystemExit(f"{document}: needs one {name} marker pair")
    document.write_text(text)
